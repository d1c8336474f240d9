from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from devices.selectors import device_summary
from gateway.provisioning import provisioning_setup
from portal.access import ADMIN, member_required, safe_next
from portal.api.permissions import request_membership
from portal.choices import Role
from portal.pagination import InvalidCursor, keyset_page
from portal.selectors import audit_events
from portal.services import tenant_update_gateway


class LoginView(auth_views.LoginView):
    template_name = "portal/login.html"
    redirect_authenticated_user = True


def home(request: HttpRequest) -> HttpResponse:
    """Send each role to its own starting page."""
    if not request.user.is_authenticated:
        return redirect("login")
    membership = request_membership(request)
    if membership is None:
        return render(request, "portal/no_tenant.html", status=403)
    if membership.role == Role.USER:
        return redirect("enrollment:pair")
    if membership.role == Role.TECHNICIAN:
        return redirect("enrollment:lookup")
    return redirect("dashboard")


@member_required(ADMIN)
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "portal/dashboard.html",
        {
            "summary": device_summary(tenant=request.tenant),
            "events": audit_events(tenant=request.tenant).order_by("-created_at", "-id")[:10],
        },
    )


@member_required(ADMIN)
def audit_log(request: HttpRequest) -> HttpResponse:
    try:
        page = keyset_page(
            audit_events(tenant=request.tenant).select_related(None),
            ordering=["-created_at", "-id"],
            cursor=request.GET.get("cursor"),
            page_size=50,
        )
    except InvalidCursor:
        return redirect("audit_log")
    return render(request, "portal/audit_log.html", {"page": page})


@member_required(ADMIN)
def setup(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/setup.html", provisioning_setup(tenant=request.tenant))


@require_POST
@member_required(ADMIN)
def gateway_toggle(request: HttpRequest) -> HttpResponse:
    tenant_update_gateway(tenant=request.tenant, actor=request.actor, enabled=request.POST.get("enabled") == "1")
    return redirect(safe_next(request, "setup"))
