"""HTTP glue for what phones fetch (provisioning files) and the admin's key renewal."""

import ipaddress

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from gateway import provisioning
from portal.access import ADMIN, member_required


def _source_address(request: HttpRequest) -> str | None:
    address = request.META.get("REMOTE_ADDR", "")
    if settings.TRUST_X_FORWARDED_FOR:
        # The last entry is the one our own proxy appended; earlier ones are whatever the client sent.
        address = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1].strip() or address
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def _bare(status: int) -> HttpResponse:
    # Every refusal looks the same: nothing tells a key from a MAC from a disabled tenant.
    response = HttpResponse(b"", status=status, content_type="text/plain")
    response["Cache-Control"] = "no-store"
    return response


# Phones have no session and this view changes nothing a session could: no CSRF check, so the
# logs Poly phones PUT next to their files get a plain 405, not a CSRF refusal logged each time.
@csrf_exempt
@require_GET
def provision(request: HttpRequest, key: str, file_name: str) -> HttpResponse:
    if settings.PROVISIONING_REQUIRE_HTTPS and not request.is_secure():
        return _bare(403)
    source = _source_address(request)
    retry_after = provisioning.provisioning_retry_after(source=source or "unknown")
    if retry_after:
        response = _bare(429)
        response["Retry-After"] = str(retry_after)
        return response
    served = provisioning.provisioning_file_serve(
        key=key,
        file_name=file_name,
        mac_param=request.GET.get("mac", ""),
        user_agent=request.headers.get("User-Agent", ""),
        source=source,
    )
    if served is None:
        return _bare(404)
    response = HttpResponse(served.body, content_type=served.content_type)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@member_required(ADMIN)
def provisioning_key_regenerate(request: HttpRequest) -> HttpResponse:
    provisioning.provisioning_key_regenerate(tenant=request.tenant, actor=request.actor)
    messages.success(
        request,
        "New provisioning URL created. Phones still using the old one get nothing until they are given the new one.",
    )
    return redirect("setup")
