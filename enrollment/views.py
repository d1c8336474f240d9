from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from devices.choices import DeviceState
from devices.exports import csv_lines
from devices.models import Device
from devices.selectors import device_get
from enrollment import services
from enrollment.choices import PairingOutcome
from enrollment.selectors import (
    EXPORT_HEADER,
    LOOKUP_LIMIT,
    device_lookup,
    pairing_request_approved_get,
    verification_code_export_rows,
)
from gateway.views import _source_address
from portal.access import ADMIN, STAFF, member_required, safe_next

FILTER_KEYS = ("state", "q", "vendor", "model", "location", "online")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@member_required(STAFF)
def lookup(request: HttpRequest) -> HttpResponse:
    """The technician's page: find a phone by MAC (or its last digits) or location, read its code."""
    query = request.GET.get("q", "").strip()
    found = device_lookup(tenant=request.tenant, query=query)
    devices = found[:LOOKUP_LIMIT]
    services.verification_codes_viewed(
        tenant=request.tenant, actor=request.actor, role=request.membership.role, devices=devices
    )
    context = {"query": query, "devices": devices, "more": len(found) > LOOKUP_LIMIT}
    if request.htmx and not request.htmx.boosted:
        return render(request, "enrollment/lookup.html#results", context)
    return render(request, "enrollment/lookup.html", context)


@require_POST
@member_required(ADMIN)
def codes_generate(request: HttpRequest) -> HttpResponse:
    """Generate codes for the selected devices, or for every device waiting on activation."""
    try:
        if request.POST.get("scope") == "waiting":
            issued = services.verification_codes_issue(
                tenant=request.tenant, actor=request.actor, state=DeviceState.WAITING_ON_ACTIVATION
            )
            skipped = 0
        else:
            ids = {int(i) for i in request.POST.getlist("ids") if i.isdigit()}
            issued = services.verification_codes_issue(tenant=request.tenant, actor=request.actor, ids=ids)
            skipped = len(ids) - len(issued)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        text = f"Generated {_plural(len(issued), 'verification code')}, valid for 24 hours."
        if skipped:
            text += f" {_plural(skipped, 'selected device')} skipped: only devices waiting on activation get codes."
        messages.success(request, text)
    return redirect(safe_next(request, "devices:list"))


@require_POST
@member_required(ADMIN, model=Device)
def code_generate(request: HttpRequest, pk: int) -> HttpResponse:
    device = device_get(tenant=request.tenant, pk=pk)
    try:
        services.verification_code_issue(device=device, actor=request.actor)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request, f"New verification code for {device.mac}, valid for 24 hours. Any earlier code no longer works."
        )
    return redirect(safe_next(request, reverse("devices:detail", args=[device.pk])))


@member_required(STAFF)
def codes_export(request: HttpRequest) -> HttpResponse:
    """Live codes as CSV for the technicians who enroll the phones (cells neutralized): an admin
    downloads it for them, or a technician from the look-up page."""
    filters = {key: request.GET[key] for key in FILTER_KEYS if request.GET.get(key, "") != ""}
    try:
        rows = verification_code_export_rows(tenant=request.tenant, filters=filters)
        first = next(rows, None)  # surface filter errors before streaming starts
    except ValidationError as error:
        return HttpResponse(f"Invalid filter: {error.message_dict}", status=400, content_type="text/plain")
    services.verification_codes_exported(
        tenant=request.tenant, actor=request.actor, role=request.membership.role, filters=filters
    )

    def all_rows():
        if first is not None:
            yield first
            yield from rows

    response = StreamingHttpResponse(csv_lines(EXPORT_HEADER, all_rows()), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="verification-codes-{timezone.now():%Y%m%d-%H%M}.csv"'
    return response


# Pairing and sign-out ------------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
@member_required()  # any member signs a phone in for themselves, end users above all
def pair(request: HttpRequest) -> HttpResponse:
    """The pairing page: type the code the phone shows (`?code=` comes prefilled, as phones may link it)."""
    if request.method == "POST":
        code = request.POST.get("code", "")
        result = services.pairing_approve(user=request.user, code=code, source=_source_address(request) or "")
        if result.ok:
            return redirect("enrollment:paired", pk=result.request.pk)
        status = 429 if result.outcome == PairingOutcome.LOCKED else 400
        return render(request, "enrollment/pair.html", {"code": code[:32], "error": result.message}, status=status)
    code = request.GET.get("code", "")
    normalized = services.pairing_code_normalize(code)
    return render(
        request, "enrollment/pair.html", {"code": services.pairing_code_display(normalized) if normalized else ""}
    )


@member_required()
def paired(request: HttpRequest, pk: int) -> HttpResponse:
    pairing = pairing_request_approved_get(tenant=request.tenant, user=request.user, pk=pk)
    return render(request, "enrollment/paired.html", {"pairing": pairing, "device": pairing.device})


@never_cache  # the answer carries a live code
@require_POST
@member_required(ADMIN, model=Device)
def device_sign_in(request: HttpRequest, pk: int) -> HttpResponse:
    """"Sign in a user": a pairing code for the device, shown once with the URL to enter it at."""
    device = device_get(tenant=request.tenant, pk=pk)
    try:
        started = services.pairing_request_start(device=device, actor=request.actor)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        url = reverse("devices:detail", args=[device.pk])
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    template = "enrollment/sign_in_user.html#pane" if request.htmx else "enrollment/sign_in_user.html"
    return render(request, template, {"device": device, "started": started})


@require_POST
@member_required(ADMIN, model=Device)
def device_sign_out(request: HttpRequest, pk: int) -> HttpResponse:
    device = device_get(tenant=request.tenant, pk=pk)
    user = device.signed_in_user
    if services.device_sign_out(device=device, actor=request.actor):
        who = f" {user.display_name} was signed out of it." if user else ""
        messages.success(request, f"{device} is signed out.{who} The phone is asked to sync its configuration.")
    else:
        messages.info(request, f"Nobody is signed in to {device}: nothing to sign out.")
    return redirect(safe_next(request, reverse("devices:detail", args=[device.pk])))
