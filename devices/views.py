from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from devices import services
from devices.choices import CommandStatus, DeviceState
from devices.exports import csv_lines
from devices.forms import DeviceEditForm, DeviceForm
from devices.models import Device, DeviceCommand
from devices.selectors import (
    EXPORT_HEADER,
    SORTS,
    device_command_get,
    device_command_history,
    device_commands_load,
    device_export_rows,
    device_get,
    device_model_list,
    device_page,
    device_summary,
)
from enrollment.selectors import verification_codes_load
from policies.selectors import policy_sync_load
from portal.access import ADMIN, member_required, safe_next
from portal.pagination import InvalidCursor
from portal.selectors import audit_events

FILTER_KEYS = ("state", "q", "vendor", "model", "location", "online", "policy_sync")

COLUMNS = [
    ("display_name", "Display name"),
    ("mac", "MAC address"),
    ("vendor", "Manufacturer"),
    ("model", "Model"),
    ("firmware", "Firmware"),
    ("location", "Location"),
    ("state", "Status"),
    ("user", "User"),
    ("phone_number", "Phone number"),
    ("last_seen", "Last seen"),
]

TABS = [("", "All"), *DeviceState.choices]


def _filters(request: HttpRequest) -> dict:
    return {key: request.GET[key] for key in FILTER_KEYS if request.GET.get(key, "") != ""}


def _apply_errors(form, error: ValidationError) -> None:
    for field, field_errors in error.message_dict.items():
        form.add_error(field if field in form.fields else None, field_errors)


@member_required(ADMIN)  # technicians have their own look-up page (enrollment.views.lookup)
def device_list(request: HttpRequest) -> HttpResponse:
    filters = _filters(request)
    sort = request.GET.get("sort", "")
    if sort.lstrip("-") not in SORTS:
        sort = ""
    arguments = dict(tenant=request.tenant, filters=filters, sort=sort, page_size=settings.INVENTORY_PAGE_SIZE)
    page, filter_errors = None, None
    try:
        try:
            page = device_page(cursor=request.GET.get("cursor"), **arguments)
        except InvalidCursor:  # a stale or edited link: start from the first page
            page = device_page(cursor=None, **arguments)
    except ValidationError as error:
        filter_errors = error.message_dict
    if page is not None:
        device_commands_load(tenant=request.tenant, devices=page.items)
        verification_codes_load(tenant=request.tenant, devices=page.items)
        policy_sync_load(tenant=request.tenant, devices=page.items)
    context = {
        "page": page,
        # Every key present, so the template never looks up a missing one (each miss is an exception).
        "filters": {key: filters.get(key, "") for key in FILTER_KEYS},
        "filter_errors": filter_errors,
        "sort": sort,
        "columns": COLUMNS,
        "tabs": TABS,
        "now": timezone.now(),
    }
    if request.htmx and not request.htmx.boosted:
        return render(request, "devices/list.html#inventory", context)
    device_models = list(device_model_list())  # one query for both filters
    context.update(
        summary=device_summary(tenant=request.tenant),
        device_models=device_models,
        vendors=sorted({m.vendor for m in device_models}),
    )
    return render(request, "devices/list.html", context)


@member_required(ADMIN, model=Device)
def device_detail(request: HttpRequest, pk: int) -> HttpResponse:
    device = device_get(tenant=request.tenant, pk=pk)
    events = audit_events(tenant=request.tenant, object_type="device", object_id=device.pk).order_by(
        "-created_at", "-id"
    )
    return render(
        request,
        "devices/detail.html",
        {"device": device, "events": events[:100], "commands": device_command_history(device=device)},
    )


def _pane(request: HttpRequest, template: str, context: dict) -> HttpResponse:
    """The form as a side pane when HTMX asks, else as a page of its own (works without JS)."""
    if request.htmx:
        return render(request, f"{template}#pane", context)
    return render(request, template, context)


@member_required(ADMIN)
def device_create(request: HttpRequest) -> HttpResponse:
    form = DeviceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device = services.device_onboard(tenant=request.tenant, actor=request.actor, **form.cleaned_data)
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, f"{device.mac} was added. Generate a verification code to enroll it.")
            url = reverse("devices:detail", args=[device.pk])
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    return _pane(
        request, "devices/form.html", {"form": form, "title": "Provision devices", "action": reverse("devices:create")}
    )


@member_required(ADMIN, model=Device)
def device_edit(request: HttpRequest, pk: int) -> HttpResponse:
    device = device_get(tenant=request.tenant, pk=pk)
    initial = {
        "location": device.location,
        "display_name": device.display_name,
        "model": device.model_id,
        "phone_number": device.phone_number,
    }
    form = DeviceEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.device_update(device=device, actor=request.actor, data=form.cleaned_data)
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, "Changes saved.")
            url = reverse("devices:detail", args=[device.pk])
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    return _pane(
        request,
        "devices/form.html",
        {
            "form": form,
            "device": device,
            "title": f"Edit {device}",
            "action": reverse("devices:edit", args=[device.pk]),
        },
    )


@require_POST
@member_required(ADMIN, model=Device)
def device_delete(request: HttpRequest, pk: int) -> HttpResponse:
    device = device_get(tenant=request.tenant, pk=pk)
    services.device_delete(device=device, actor=request.actor)
    messages.success(request, f"{device.mac} was removed from the inventory.")
    return redirect("devices:list")


@require_POST
@member_required(ADMIN)
def device_bulk_delete(request: HttpRequest) -> HttpResponse:
    ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()]
    removed = services.devices_delete(tenant=request.tenant, actor=request.actor, ids=ids)
    messages.success(request, f"{removed} device{'s' if removed != 1 else ''} removed from the inventory.")
    return redirect(safe_next(request, "devices:list"))


@member_required(ADMIN)
def device_export(request: HttpRequest) -> HttpResponse:
    try:
        rows = device_export_rows(tenant=request.tenant, filters=_filters(request))
        first = next(rows, None)  # surface filter errors before streaming starts
    except ValidationError as error:
        return HttpResponse(f"Invalid filter: {error.message_dict}", status=400, content_type="text/plain")

    def all_rows():
        if first is not None:
            yield first
            yield from rows

    response = StreamingHttpResponse(csv_lines(EXPORT_HEADER, all_rows()), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="sip-devices-{timezone.now():%Y%m%d-%H%M}.csv"'
    return response


COMMAND_VERBS = {"restart": "Restart", "resync": "Sync config"}


@require_POST
@member_required(ADMIN, model=Device)
def device_command(request: HttpRequest, pk: int, kind: str) -> HttpResponse:
    device = device_get(tenant=request.tenant, pk=pk)
    (command,) = services.device_commands_request(
        tenant=request.tenant, actor=request.actor, kind=kind, ids=[device.pk]
    )
    if command.status == CommandStatus.UNREACHABLE:
        messages.error(
            request, f"{device} is not registered, so it cannot be reached. {COMMAND_VERBS[kind]} was not sent."
        )
    else:
        messages.success(request, f"{COMMAND_VERBS[kind]} requested for {device}. Its status updates below.")
    return redirect(reverse("devices:detail", args=[device.pk]) + "#commands")


@require_POST
@member_required(ADMIN)
def device_bulk_command(request: HttpRequest) -> HttpResponse:
    kind = request.POST.get("kind", "")
    if kind not in COMMAND_VERBS:
        return HttpResponse("Unknown command.", status=400, content_type="text/plain")
    ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()]
    commands = services.device_commands_request(tenant=request.tenant, actor=request.actor, kind=kind, ids=ids)
    unreachable = sum(1 for c in commands if c.status == CommandStatus.UNREACHABLE)
    text = f"{COMMAND_VERBS[kind]} requested for {len(commands)} phone{'s' if len(commands) != 1 else ''}."
    if unreachable:
        text += f" {unreachable} not registered, so not reachable."
    messages.success(request, text + " Each row shows its status.")
    return redirect(safe_next(request, "devices:list"))


@member_required(ADMIN, model=DeviceCommand)
def command_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The status chip of one command; HTMX polls it until the command is final."""
    command = device_command_get(tenant=request.tenant, pk=pk)
    return render(request, "devices/_command_status.html", {"command": command})
