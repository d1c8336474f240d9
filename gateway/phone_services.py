"""What phones ask of the SIP edge, as services: REGISTER bindings, and the feature codes they
dial (`*55*<code>` enrollment, the Sign-in and Sign-out keys).

Plain values in, plain values out: the edge calls these from worker threads and reads the
results on its event loop, where no lazy ORM attribute may be touched. A registration lives in
the device's row, never in an edge's memory, so any edge instance can serve any phone.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from devices.catalog import AgentFacts
from devices.choices import CommandKind, DeviceState
from devices.models import Device
from devices.services import device_commands_request
from enrollment.choices import CheckOutcome
from enrollment.services import device_sign_out, pairing_request_start, verification_code_check
from gateway.sip.message import SipUri
from gateway.useragent import parse_user_agent
from policies.services import device_wanted_version_raise, devices_policy_sync_if_behind
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
    mac = _mac_or_none(sip_user)
    if mac is None:
        return None
    return Device.objects.select_related("tenant", "model").filter(mac=mac, tenant__sip_gateway_enabled=True).first()


@dataclass(frozen=True)
class Binding:
    """What one REGISTER asks: bind `sip_user` to `contact_uri` for `expires_in` seconds (as the
    edge granted), seen from `source` (`ip:port`) over `transport`."""

    sip_user: str
    contact_uri: str
    transport: str
    source: str
    user_agent: str
    expires_in: int


# Read for every REGISTER, with what the User-Agent facts need of the device's model.
_BINDING_FIELDS = (
    "pk",
    "mac",
    "contact_uri",
    "registration_expires_at",
    "user_agent",
    "wanted_version",
    "synced_version",
    "model__vendor",
    "model__config_format",
)


def registrations_store(*, bindings: Sequence[Binding], now: datetime | None = None) -> list[Registration | None]:
    """Store the bindings of many REGISTERs at once (the edge batches the ones that arrive together):
    one SELECT and one UPDATE for the lot. Each result is None when no onboarded device of an
    enabled tenant has that SIP user. A User-Agent that changed is read for model and firmware (one
    more UPDATE for those); devices behind their wanted config version get a policy sync (the
    policies service decides how often). Of two bindings for one device, the later wins."""
    now = now or timezone.now()
    macs = [_mac_or_none(binding.sip_user) for binding in bindings]
    rows = {
        row["mac"]: row
        for row in Device.objects.filter(mac__in={m for m in macs if m}, tenant__sip_gateway_enabled=True).values(
            *_BINDING_FIELDS
        )
    }
    updates: dict[int, tuple[str, str, str, datetime]] = {}
    results: list[Registration | None] = []
    agents: dict[int, tuple[str, dict]] = {}
    behind = set()
    facts = AgentFacts()
    for binding, mac in zip(bindings, macs, strict=True):
        row = rows.get(mac) if mac else None
        if row is None:
            results.append(None)
            continue
        updates[row["pk"]] = (
            binding.contact_uri[:255],
            binding.transport,
            binding.source[:64],
            now + timedelta(seconds=binding.expires_in),
        )
        live = row["registration_expires_at"] is not None and row["registration_expires_at"] > now
        if row["contact_uri"] != binding.contact_uri or not live:
            log.info("registered %s at %s via %s from %s", mac, binding.contact_uri, binding.transport, binding.source)
        if (agent := binding.user_agent[:255]) != row["user_agent"]:
            # Parsed only when it changed: a refresh costs its share of one UPDATE, no catalog look-up.
            agents[row["pk"]] = agent, facts.of(
                parse_user_agent(agent), vendor=row["model__vendor"], config_format=row["model__config_format"]
            )
        if row["synced_version"] < row["wanted_version"]:
            behind.add(row["pk"])
        results.append(Registration(row["pk"], binding.contact_uri, binding.expires_in))
    # One transaction: no reader sees a binding without the User-Agent facts stored with it.
    with transaction.atomic():
        _bindings_write(sorted(updates.items()), now=now)  # sorted: one lock order for concurrent batches
        _agents_write(sorted(agents.items()))
        if behind:
            devices_policy_sync_if_behind(ids=sorted(behind), now=now)
    return results


def _agents_write(rows: list[tuple[int, tuple[str, dict]]]) -> None:
    """(device id, (User-Agent, facts)) for each device whose User-Agent changed; a fact the agent
    does not give (firmware, model_id) keeps what the device has."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        for pk, (agent, facts) in rows:
            Device.objects.filter(pk=pk).update(user_agent=agent, **facts)
        return
    ids = [pk for pk, _ in rows]
    agents = [agent for _, (agent, _) in rows]
    firmwares = [facts.get("firmware") for _, (_, facts) in rows]
    model_ids = [facts.get("model_id") for _, (_, facts) in rows]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {Device._meta.db_table} AS d SET user_agent = u.agent,
                firmware = COALESCE(u.firmware, d.firmware), model_id = COALESCE(u.model_id, d.model_id)
            FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bigint[]) AS u(id, agent, firmware, model_id)
            WHERE d.id = u.id
            """,  # noqa: S608 - table name from the model
            [ids, agents, firmwares, model_ids],
        )


def _bindings_write(rows: list[tuple[int, tuple[str, str, str, datetime]]], *, now: datetime) -> None:
    """(device id, (contact, transport, source, expires at)) for each binding."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        devices = [
            Device(pk=pk, contact_uri=c, transport=t, source_address=s, registration_expires_at=e, last_seen_at=now)
            for pk, (c, t, s, e) in rows
        ]
        Device.objects.bulk_update(
            devices, ["contact_uri", "transport", "source_address", "registration_expires_at", "last_seen_at"]
        )
        return
    # bulk_update spends ~0.5 ms of Python per row building CASE expressions; arrays cost nothing.
    ids, values = zip(*rows, strict=True)
    contacts, transports, sources, expires = zip(*values, strict=True)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {Device._meta.db_table} AS d SET contact_uri = u.contact, transport = u.transport,
                source_address = u.source, registration_expires_at = u.expires, last_seen_at = %s
            FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::timestamptz[])
                AS u(id, contact, transport, source, expires)
            WHERE d.id = u.id
            """,  # noqa: S608 - table name from the model
            [now, list(ids), list(contacts), list(transports), list(sources), list(expires)],
        )


def _mac_or_none(sip_user: str) -> str | None:
    try:
        return normalize_mac(sip_user)
    except InvalidMac:
        return None


def registration_remove(*, sip_user: str, contact_uri: str | None, now: datetime | None = None) -> Registration | None:
    """Expires: 0. Remove the binding when it is to `contact_uri`, or whatever it is when
    `contact_uri` is None (`Contact: *`); None for an unknown phone. The result lists what is
    left bound (expires_in 0 when nothing)."""
    device = _phone(sip_user)
    if device is None:
        return None
    now = now or timezone.now()
    if contact_uri is None or _same_contact(device.contact_uri, contact_uri):
        Device.objects.filter(pk=device.pk).update(
            contact_uri="", source_address="", registration_expires_at=None, last_seen_at=now
        )
        log.info("unregistered %s", device.mac)
        return Registration(device.pk, "", 0)
    return _current(device, now)


def _same_contact(bound: str, asked: str) -> bool:
    """Whether an un-REGISTER names the bound contact: the same URI as RFC 3261 compares them
    (`;transport=UDP` is `;transport=udp`), not only the same text."""
    if bound == asked:
        return True
    if not bound:
        return False
    try:
        return SipUri.parse(bound).same_as(SipUri.parse(asked))
    except ValueError:
        return False


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
