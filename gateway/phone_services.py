"""What phones ask of the SIP edge, as services: REGISTER bindings, and the feature codes they
dial (`*55*<code>` enrollment, the Sign-in and Sign-out keys).

Plain values in, plain values out: the edge calls these from worker threads and reads the
results on its event loop, where no lazy ORM attribute may be touched. A registration lives in
the device's row, never in an edge's memory, so any edge instance can serve any phone.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone

from devices.choices import CommandKind, DeviceState
from devices.models import Device, DeviceModel
from devices.services import device_commands_request
from enrollment.choices import CheckOutcome
from enrollment.services import device_sign_out, pairing_request_start, verification_code_check
from gateway.useragent import PhoneAgent, parse_user_agent
from policies.services import device_policy_sync_if_behind, device_wanted_version_raise
from portal.mac import InvalidMac, normalize_mac
from portal.services import Actor

log = logging.getLogger(__name__)


class PhoneRefused(Exception):
    """The phone may not do this; str() is the reason, short enough for a SIP Warning header."""


@dataclass(frozen=True)
class Registration:
    device_id: int
    contact_uri: str
    expires_in: int  # seconds left; 0 when the phone has no live binding


def _phone(sip_user: str) -> Device | None:
    """The onboarded device whose SIP user (its MAC) this is, in a tenant with the gateway on."""
    try:
        mac = normalize_mac(sip_user)
    except InvalidMac:
        return None
    return Device.objects.select_related("tenant", "model").filter(mac=mac, tenant__sip_gateway_enabled=True).first()


def _agent_facts(device: Device, agent: PhoneAgent) -> dict:
    """Model and firmware as the User-Agent says, as provisioning reads them: it refines the
    device's model within its vendor, never moves it to another vendor's phone."""
    if not agent.vendor or (device.model_id and device.model.vendor != agent.vendor):
        return {}
    facts = {"firmware": agent.firmware[:64]} if agent.firmware else {}
    named = DeviceModel.objects.filter(vendor=agent.vendor, model__iexact=agent.model).first() if agent.model else None
    if named is not None and (not device.model_id or named.config_format == device.model.config_format):
        facts["model_id"] = named.pk
    return facts


def registration_store(
    *,
    sip_user: str,
    contact_uri: str,
    transport: str,
    source: str,
    user_agent: str,
    expires_in: int,
    now: datetime | None = None,
) -> Registration | None:
    """Bind the phone to `contact_uri` for `expires_in` seconds (granted by the edge), as seen from
    `source` (`ip:port`) over `transport`; None when no onboarded device of an enabled tenant has
    this SIP user. A device behind its wanted config version gets a policy sync (the policies
    service decides how often)."""
    device = _phone(sip_user)
    if device is None:
        return None
    now = now or timezone.now()
    fields = {
        "contact_uri": contact_uri[:255],
        "transport": transport,
        "source_address": source[:64],
        "registration_expires_at": now + timedelta(seconds=expires_in),
        "last_seen_at": now,
    }
    user_agent = user_agent[:255]
    if user_agent != device.user_agent:
        # Parsed only when it changed: a refresh every few minutes costs one UPDATE, no catalog look-up.
        fields["user_agent"] = user_agent
        fields.update(_agent_facts(device, parse_user_agent(user_agent)))
    Device.objects.filter(pk=device.pk).update(**fields)
    if device.contact_uri != contact_uri or not device.online:
        log.info("registered %s at %s via %s from %s for %ss", device.mac, contact_uri, transport, source, expires_in)
    for name, value in fields.items():
        setattr(device, name, value)
    if device.synced_version < device.wanted_version:
        device_policy_sync_if_behind(device=device, now=now)
    return Registration(device.pk, contact_uri, expires_in)


def registration_remove(*, sip_user: str, contact_uri: str | None, now: datetime | None = None) -> Registration | None:
    """Expires: 0. Remove the binding when it is to `contact_uri`, or whatever it is when
    `contact_uri` is None (`Contact: *`); None for an unknown phone. The result lists what is
    left bound (expires_in 0 when nothing)."""
    device = _phone(sip_user)
    if device is None:
        return None
    now = now or timezone.now()
    if contact_uri is None or device.contact_uri == contact_uri:
        Device.objects.filter(pk=device.pk).update(
            contact_uri="", source_address="", registration_expires_at=None, last_seen_at=now
        )
        log.info("unregistered %s", device.mac)
        return Registration(device.pk, "", 0)
    return _current(device, now)


def registration_current(*, sip_user: str, now: datetime | None = None) -> Registration | None:
    """A REGISTER without Contact asks what is bound (RFC 3261 §10.2.3)."""
    device = _phone(sip_user)
    return None if device is None else _current(device, now or timezone.now())


def _current(device: Device, now: datetime) -> Registration:
    if not device.contact_uri or device.registration_expires_at is None or device.registration_expires_at <= now:
        return Registration(device.pk, "", 0)
    return Registration(device.pk, device.contact_uri, int((device.registration_expires_at - now).total_seconds()))


# --- Feature codes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrollment:
    ok: bool
    reason: str  # for the Warning header when not ok
    device_id: int | None = None


def phone_enroll(*, sip_user: str, code: str, source: str) -> Enrollment:
    """`*55*<code>` dialled by `sip_user` from `source` (IP address): check the code (lockouts
    included, per device and per source) and enroll the device. A device of a tenant with the
    gateway off is as unknown as one never onboarded."""
    device = _phone(sip_user)
    if device is None:
        if not _is_unknown(sip_user):
            return Enrollment(False, CheckOutcome.NOT_ONBOARDED.label)  # its tenant turned the gateway off
        # An unknown SIP user still costs its source an attempt: that is how MACs get guessed.
        check = verification_code_check(mac_or_device=sip_user, code=code, source=source)
        return Enrollment(False, check.message)
    check = verification_code_check(mac_or_device=device, code=code, source=source)
    if not check.ok:
        return Enrollment(False, check.message, device.pk)
    # What the phone's config carries changed (the Sign-in key appears): a refresh that finds
    # it behind syncs it again, should the check-sync below get lost.
    device_wanted_version_raise(device=device)
    return Enrollment(True, "", device.pk)


def _is_unknown(sip_user: str) -> bool:
    """True when no device has this MAC at all (not one of a tenant with the gateway off)."""
    try:
        return not Device.objects.filter(mac=normalize_mac(sip_user)).exists()
    except InvalidMac:
        return True


def phone_check_sync(*, device_id: int) -> None:
    """Queue a check-sync for the phone (a worker sends the NOTIFY), so it fetches its new config."""
    device = Device.objects.select_related("tenant").filter(pk=device_id).first()
    if device is not None:
        device_commands_request(
            tenant=device.tenant, actor=Actor.phone(device.mac), kind=CommandKind.RESYNC, ids=[device.pk]
        )


def _registered_phone(sip_user: str, source_ip: str) -> Device:
    """The Sign-in and Sign-out keys act on the phone that pressed them: the device must hold a
    live registration from the address the call comes from. Without SIP authentication, this is
    what keeps a forged From header elsewhere on the network from signing someone else out."""
    device = _phone(sip_user)
    if device is None:
        raise PhoneRefused(CheckOutcome.NOT_ONBOARDED.label)
    registered_ip = device.source_address.rpartition(":")[0].strip("[]")
    if not device.online or registered_ip != source_ip:
        raise PhoneRefused("Register with the SIP gateway first")
    if device.state == DeviceState.WAITING_ON_ACTIVATION:
        raise PhoneRefused("Device is not enrolled; dial *55* and the verification code first")
    return device


@dataclass(frozen=True)
class SignIn:
    device_id: int
    user_code: str  # XXXX-XXXX
    verification_url: str
    expires_in: int

    @property
    def text(self) -> str:
        """What the phone shows (SIP MESSAGE)."""
        return f"Sign in at {self.verification_url} with code {self.user_code}"


def phone_sign_in_start(*, sip_user: str, source_ip: str) -> SignIn:
    """The Sign-in key: a pairing request for the phone, whose code the edge shows on its screen.
    Raises PhoneRefused (not enrolled, already signed in, not registered from there)."""
    device = _registered_phone(sip_user, source_ip)
    try:
        start = pairing_request_start(device=device, actor=Actor.phone(device.mac))
    except ValidationError as exc:
        raise PhoneRefused(exc.messages[0]) from exc
    return SignIn(device.pk, start.user_code, start.verification_url, start.expires_in)


def phone_sign_out(*, sip_user: str, source_ip: str) -> int:
    """The Sign-out key: sign the phone out (which check-syncs it). A phone nobody is signed in to
    is check-synced all the same: it pressed Sign-out because its screen still shows someone.
    Returns the device id. Raises PhoneRefused."""
    device = _registered_phone(sip_user, source_ip)
    if not device_sign_out(device=device, actor=Actor.phone(device.mac)):
        device_commands_request(
            tenant=device.tenant, actor=Actor.phone(device.mac), kind=CommandKind.RESYNC, ids=[device.pk]
        )
    return device.pk
