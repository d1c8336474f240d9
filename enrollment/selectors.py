import re
from collections.abc import Iterator

from django.db.models import Prefetch, Q, QuerySet
from django.db.models.query import prefetch_related_objects
from django.shortcuts import get_object_or_404
from django.utils import timezone

from devices.models import Device
from devices.selectors import device_list
from enrollment.choices import PairingStatus
from enrollment.keys import code_decrypt
from enrollment.models import PairingRequest, VerificationCode
from portal.models import Tenant

LOOKUP_LIMIT = 20
EXPORT_HEADER = ["MAC id", "Location", "Display name", "Verification code", "Expires at"]


def verification_codes_load(*, tenant: Tenant, devices: list[Device]) -> list[Device]:
    """Load the codes of a page of devices in one query (`device.verification_code`, `device.code`)."""
    prefetch_related_objects(
        devices, Prefetch("verification_code", queryset=VerificationCode.objects.filter(tenant=tenant))
    )
    for device in devices:
        # The code or None, for templates: a missing reverse one-to-one would raise on every row.
        device.code = getattr(device, "verification_code", None)
    return devices


def live_code(device: Device) -> VerificationCode | None:
    """The device's code if it is live (loaded with the device or by verification_codes_load)."""
    try:
        code = device.verification_code
    except VerificationCode.DoesNotExist:
        return None
    return code if code.code is not None else None


def device_lookup(*, tenant: Tenant, query: str, limit: int = LOOKUP_LIMIT) -> list[Device]:
    """Devices for the technician's search box: a MAC in any format or its last 4+ hex digits,
    or part of a location or display name. Up to `limit` + 1 rows, so the page can say "more"."""
    text = (query or "").strip()
    if not text:
        return []
    match = Q(location__icontains=text) | Q(display_name__icontains=text)
    digits = re.sub(r"[\s:.\-]", "", text)
    if 4 <= len(digits) <= 12 and re.fullmatch(r"[0-9A-Fa-f]+", digits):
        # search_text ends with the MAC's hex digits (devices.models.Device), under a trigram index.
        match |= Q(search_text__endswith=digits.upper())
    devices = (
        Device.objects.filter(match, tenant=tenant)
        .select_related("model", "verification_code")
        .order_by("location", "mac")
    )
    return list(devices[: limit + 1])


def verification_code_export_devices(*, tenant: Tenant, filters: dict | None = None) -> QuerySet:
    """The devices (inventory filters applied) whose live code the technicians' CSV lists."""
    return device_list(tenant=tenant, filters=filters).filter(
        verification_code__ciphertext__isnull=False, verification_code__expires_at__gt=timezone.now()
    )


def verification_code_export_rows(*, tenant: Tenant, filters: dict | None = None) -> Iterator[list]:
    """Devices with a live code, for the technicians' CSV, streamed in chunks."""
    rows = (
        verification_code_export_devices(tenant=tenant, filters=filters)
        .order_by("location", "mac")
        .values_list(
            "mac", "location", "display_name", "verification_code__ciphertext", "verification_code__expires_at"
        )
    )
    for mac, location, display_name, ciphertext, expires_at in rows.iterator(chunk_size=5000):
        if (code := code_decrypt(ciphertext)) is not None:
            yield [mac, location, display_name, code, expires_at.isoformat()]


def pairing_request_pending(*, tenant: Tenant, device: Device) -> PairingRequest | None:
    """The device's live pairing request (its code cannot be shown again: only its expiry)."""
    return (
        PairingRequest.objects.filter(
            tenant=tenant, device=device, status=PairingStatus.PENDING, expires_at__gt=timezone.now()
        )
        .order_by("-created_at")
        .first()
    )


def pairing_request_approved_get(*, tenant: Tenant, user, pk) -> PairingRequest:
    """A request this user approved, for the page that confirms it; anyone else's is a 404."""
    return get_object_or_404(
        PairingRequest.objects.select_related("device"),
        tenant=tenant, approved_by=user, status=PairingStatus.APPROVED, pk=pk,
    )
