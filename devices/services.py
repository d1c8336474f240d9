from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from devices.models import Device
from devices.selectors import device_model_lookup
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
