from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from devices.choices import PENDING_COMMAND_STATUSES, CommandKind, CommandStatus
from devices.models import Device, DeviceCommand
from devices.selectors import device_model_lookup
from gateway.tasks import COMMAND_BATCH, device_commands_send
from portal.mac import InvalidMac, normalize_mac
from portal.models import Tenant
from portal.services import Actor, audit_record, audit_record_many

EDITABLE_FIELDS = ("display_name", "location", "model", "phone_number")
MAX_LENGTHS = {"display_name": 100, "location": 100, "phone_number": 32}


def mac_owner_error(*, tenant: Tenant, owner_tenant_id: int) -> str:
    # Never say which organization: that would leak another tenant's inventory.
    if owner_tenant_id == tenant.pk:
        return "already in your inventory"
    return "already onboarded by another organization"


def _clean_text(field: str, value, errors: dict) -> str:
    text = "" if value is None else str(value).strip()
    if len(text) > MAX_LENGTHS[field]:
        errors.setdefault(field, []).append(f"Ensure this value has at most {MAX_LENGTHS[field]} characters.")
    return text


def _clean_model(value, errors: dict):
    try:
        return device_model_lookup(value)
    except ValueError as exc:
        errors.setdefault("model", []).append(str(exc))
        return None


def device_onboard(
    *, tenant: Tenant, actor: Actor, mac: str, location: str, display_name: str = "", model=None
) -> Device:
    errors: dict[str, list[str]] = {}
    try:
        canonical = normalize_mac(mac)
    except InvalidMac as exc:
        errors["mac"] = [str(exc)]
        canonical = None
    location = _clean_text("location", location, errors)
    if not location:
        errors.setdefault("location", []).append("This field is required.")
    display_name = _clean_text("display_name", display_name, errors)
    device_model = _clean_model(model, errors)
    if canonical and (owner := Device.objects.filter(mac=canonical).values_list("tenant_id", flat=True).first()):
        errors["mac"] = [f"{canonical} is {mac_owner_error(tenant=tenant, owner_tenant_id=owner)}"]
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            device = Device.objects.create(
                tenant=tenant, mac=canonical, location=location, display_name=display_name, model=device_model
            )
            audit_record(tenant=tenant, actor=actor, action="device.onboard", obj=device, details={"mac": canonical})
    except IntegrityError:
        # Another request onboarded the same MAC between our check and our insert.
        owner = Device.objects.filter(mac=canonical).values_list("tenant_id", flat=True).first()
        raise ValidationError({"mac": [f"{canonical} is {mac_owner_error(tenant=tenant, owner_tenant_id=owner)}"]}) from None
    return device


def device_update(*, device: Device, actor: Actor, data: dict) -> Device:
    """Change the admin-editable fields present in `data`; the audit entry lists what changed."""
    errors: dict[str, list[str]] = {}
    changes: dict[str, list] = {}
    for field in EDITABLE_FIELDS:
        if field not in data:
            continue
        if field == "model":
            new = _clean_model(data[field], errors)
            old_label, new_label = str(device.model or ""), str(new or "")
        else:
            new = _clean_text(field, data[field], errors)
            if field == "location" and not new:
                errors.setdefault("location", []).append("This field is required.")
            old_label, new_label = getattr(device, field), new
        if old_label != new_label:
            changes[field] = [old_label, new_label]
            setattr(device, field, new)
    if errors:
        raise ValidationError(errors)
    if changes:
        with transaction.atomic():
            device.save(update_fields=[*changes, "updated_at"])
            audit_record(tenant=device.tenant, actor=actor, action="device.update", obj=device, details=changes)
    return device


@transaction.atomic
def devices_delete(*, tenant: Tenant, actor: Actor, ids) -> int:
    """Remove devices from the inventory; ids of other tenants are ignored (never deleted)."""
    devices = list(Device.objects.filter(tenant=tenant, pk__in=ids).only("id", "mac", "display_name", "tenant_id"))
    audit_record_many(tenant=tenant, actor=actor, action="device.delete", objects=devices)
    Device.objects.filter(pk__in=[d.pk for d in devices]).delete()
    return len(devices)


def device_delete(*, device: Device, actor: Actor) -> None:
    devices_delete(tenant=device.tenant, actor=actor, ids=[device.pk])


# What a phone of no known model gets: the Yealink-style values most vendors accept.
DEFAULT_EVENTS = {"resync": "check-sync", "reboot": "check-sync;reboot=true"}



def command_event(device: Device, kind: str) -> str:
    """The `Event:` for this kind of command on this device's model (catalog data, not code)."""
    if kind == CommandKind.RESTART:
        return device.model.reboot_event if device.model_id else DEFAULT_EVENTS["reboot"]
    return device.model.resync_event if device.model_id else DEFAULT_EVENTS["resync"]


def device_commands_request(*, tenant: Tenant, actor: Actor, kind: str, ids) -> list[DeviceCommand]:
    """One command per device of the tenant in `ids` (others' ids are ignored), queued for a worker.
    A device with a pending command of the same kind gets that command back instead of a new one;
    a device with no live registration gets an `unreachable` command at once."""
    if kind not in CommandKind.values:
        raise ValidationError({"kind": [f'"{kind}" is not a command']})
    for _ in range(2):
        try:
            return _device_commands_create(tenant=tenant, actor=actor, kind=kind, ids=ids)
        except IntegrityError:
            # A concurrent request queued a command for one of these devices first: read it back.
            continue
    return _device_commands_create(tenant=tenant, actor=actor, kind=kind, ids=ids)


@transaction.atomic
def _device_commands_create(*, tenant: Tenant, actor: Actor, kind: str, ids) -> list[DeviceCommand]:
    devices = list(Device.objects.filter(tenant=tenant, pk__in=list(ids)).select_related("model").order_by("id"))
    pending = {
        command.device_id: command
        for command in DeviceCommand.objects.filter(
            device__in=devices, kind=kind, status__in=PENDING_COMMAND_STATUSES
        )
    }
    now = timezone.now()
    new = []
    for device in devices:
        if device.pk in pending:
            continue
        registered = bool(device.contact_uri) and device.online
        new.append(
            DeviceCommand(
                tenant=tenant,
                device=device,
                kind=kind,
                event=command_event(device, kind),
                requested_by=actor.user,
                requested_by_label=actor.label[:200],
                status=CommandStatus.QUEUED if registered else CommandStatus.UNREACHABLE,
                reason="" if registered else "not registered",
                finished_at=None if registered else now,
            )
        )
    DeviceCommand.objects.bulk_create(new, batch_size=1000)
    by_device = {command.device_id: command for command in new} | pending
    audit_record_many(
        tenant=tenant, actor=actor, action=f"device.{kind}", objects=[d for d in devices if d.pk not in pending]
    )
    queued = [command.pk for command in new if command.status == CommandStatus.QUEUED]
    if queued:
        for start in range(0, len(queued), COMMAND_BATCH):
            device_commands_send.delay_on_commit(queued[start : start + COMMAND_BATCH])
    return [by_device[device.pk] for device in devices]
