from django.core.exceptions import ValidationError
from django.db.models import Count, Max, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from devices.catalog import device_model_catalog, device_model_key
from devices.choices import DeviceState
from devices.filtersets import DeviceFilterSet
from devices.models import Device, DeviceCommand, DeviceModel, ImportJob, ImportRowError
from portal.models import Tenant
from portal.pagination import Page, keyset_page

# Sort keys offered by the inventory and the API; each ends on the primary key for a stable keyset.
SORTS = {
    "created": ["-created_at", "-id"],
    "display_name": ["display_name", "id"],
    "mac": ["mac", "id"],
    "vendor": ["model__vendor", "model__model", "id"],
    "model": ["model__model", "id"],
    "firmware": ["firmware", "id"],
    "location": ["location", "id"],
    "state": ["state", "id"],
    "user": ["signed_in_user__username", "id"],
    "phone_number": ["phone_number", "id"],
    "last_seen": ["last_seen_at", "id"],
}
DEFAULT_SORT = "created"


def sort_ordering(sort: str | None) -> list[str]:
    """`name` or `-name` to an ordering; unknown keys fall back to newest first."""
    sort = sort or DEFAULT_SORT
    descending = sort.startswith("-")
    columns = SORTS.get(sort.lstrip("-"))
    if columns is None:
        return SORTS[DEFAULT_SORT]
    if not descending:
        return columns
    return [c[1:] if c.startswith("-") else f"-{c}" for c in columns]


def device_list(*, tenant: Tenant, filters: dict | None = None) -> QuerySet:
    """The tenant's devices, narrowed by the inventory filters; bad filters raise ValidationError."""
    devices = Device.objects.filter(tenant=tenant).select_related("model", "signed_in_user")
    filterset = DeviceFilterSet(filters or {}, queryset=devices)
    if not filterset.is_valid():
        raise ValidationError(filterset.errors)
    return filterset.qs


def device_page(*, tenant: Tenant, filters: dict | None, sort: str | None, cursor: str | None, page_size: int) -> Page:
    return keyset_page(
        device_list(tenant=tenant, filters=filters), ordering=sort_ordering(sort), cursor=cursor, page_size=page_size
    )


def device_get(*, tenant: Tenant, pk) -> Device:
    """The tenant's device or 404: another tenant's device does not exist for this caller."""
    return get_object_or_404(Device.objects.select_related("model", "signed_in_user"), tenant=tenant, pk=pk)


def device_summary(*, tenant: Tenant) -> dict:
    """Counts for the summary cards, in one query. Counting `state` (never NULL) reads only columns
    of the index device_tenant_state_listed, so PostgreSQL answers from the index alone."""
    live = Q(registration_expires_at__gt=timezone.now())
    summary = Device.objects.filter(tenant=tenant).aggregate(
        total=Count("state"),
        waiting_on_activation=Count("state", filter=Q(state=DeviceState.WAITING_ON_ACTIVATION)),
        waiting_for_sign_in=Count("state", filter=Q(state=DeviceState.WAITING_FOR_SIGN_IN)),
        signed_in=Count("state", filter=Q(state=DeviceState.SIGNED_IN)),
        online=Count("state", filter=live),
    )
    summary["offline"] = summary["total"] - summary["online"]
    return summary


def device_model_list() -> QuerySet:
    return DeviceModel.objects.order_by("vendor", "model")


def device_model_lookup(value) -> DeviceModel | None:
    """A catalog entry by id, `T54W` or `Yealink T54W`; None for an empty value; ValueError if unknown."""
    if value in (None, ""):
        return None
    if isinstance(value, DeviceModel):
        return value
    text = str(value).strip()
    pk = device_model_catalog().get(device_model_key(text))
    if pk is None:
        raise ValueError(f'"{text}" is not a known device model')
    return DeviceModel.objects.get(pk=pk)


EXPORT_HEADER = [
    "MAC id", "Location", "Display name", "Vendor", "Model", "Firmware", "State", "User", "Phone number", "Last seen",
]


def device_export_rows(*, tenant: Tenant, filters: dict | None = None):
    """Rows of the filtered inventory for CSV export, streamed from the database in chunks."""
    states = dict(DeviceState.choices)
    rows = (
        device_list(tenant=tenant, filters=filters)
        .order_by("-created_at", "-id")
        .values_list(
            "mac", "location", "display_name", "model__vendor", "model__model", "firmware", "state",
            "signed_in_user__username", "phone_number", "last_seen_at",
        )
    )
    for row in rows.iterator(chunk_size=5000):
        row = list(row)
        row[6] = states.get(row[6], row[6])
        row[9] = row[9].isoformat() if row[9] else ""
        yield row


def device_command_get(*, tenant: Tenant, pk) -> DeviceCommand:
    return get_object_or_404(
        DeviceCommand.objects.select_related("device").prefetch_related("attempts"), tenant=tenant, pk=pk
    )


def device_commands_load(*, tenant: Tenant, devices: list[Device]) -> list[Device]:
    """Each device's newest command as `device.latest_command` (or None), in two queries per page."""
    latest_ids = (
        DeviceCommand.objects.filter(tenant=tenant, device_id__in=[d.pk for d in devices])
        .values("device_id")
        .annotate(latest=Max("id"))
        .values_list("latest", flat=True)
    )
    latest = {command.device_id: command for command in DeviceCommand.objects.filter(pk__in=list(latest_ids))}
    for device in devices:
        device.latest_command = latest.get(device.pk)
    return devices


def device_command_history(*, device: Device, limit: int = 50) -> QuerySet:
    return DeviceCommand.objects.filter(device=device).prefetch_related("attempts").order_by("-id")[:limit]


def import_job_list(*, tenant: Tenant) -> QuerySet:
    """The tenant's imports, newest first (the uploaded files are not loaded)."""
    return ImportJob.objects.filter(tenant=tenant).order_by("-created_at", "-id")


def import_job_page(*, tenant: Tenant, cursor: str | None, page_size: int) -> Page:
    """A page of the imports list, which shows counts, not each job's first 1,000 errors."""
    jobs = import_job_list(tenant=tenant).defer("errors")
    return keyset_page(jobs, ordering=["-created_at", "-id"], cursor=cursor, page_size=page_size)


def import_job_get(*, tenant: Tenant, pk) -> ImportJob:
    """The tenant's import or 404."""
    return get_object_or_404(ImportJob, tenant=tenant, pk=pk)


IMPORT_ERRORS_HEADER = ["Row", "Column", "Problem"]


def import_job_error_rows(*, job: ImportJob):
    """Every error of an import, in the order the page lists them, streamed in chunks."""
    rows = ImportRowError.objects.filter(job=job).order_by("id").values_list("row", "column", "message")
    return rows.iterator(chunk_size=5000)
