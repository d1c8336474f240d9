"""Verification codes: issue them (one device, a selection, or every device waiting on
activation), check one for the enrollment flow, sweep expired ones, and audit who read them.
Pairing: start a sign-in (the phone's Sign-in key or an admin), approve it with the code on the
pairing page, and sign a phone out."""

import contextlib
import hmac
import json
import logging
import math
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from devices.choices import CommandKind, DeviceState
from devices.models import Device
from devices.services import device_commands_request
from enrollment.choices import CheckOutcome, PairingOutcome, PairingStatus
from enrollment.keys import code_digest, code_encrypt, pairing_code_digest
from enrollment.models import PairingRequest, VerificationCode
from enrollment.selectors import live_code, verification_code_export_devices
from policies.services import device_wanted_version_raise
from portal.choices import Role
from portal.mac import InvalidMac, normalize_mac
from portal.models import AuditEvent, Membership, Tenant, User
from portal.services import Actor, audit_record, audit_record_many

logger = logging.getLogger(__name__)

CODE_LIFETIME = timedelta(hours=24)
CODE_SPACE = 10**6  # six digits
# Codes are drawn until one is free; keep the space at most half full so that stays quick.
MAX_LIVE_CODES = CODE_SPACE // 2
# Wrong codes allowed within FAILURE_WINDOW before a lockout of LOCKOUT seconds: per device, and
# more loosely per source address (many phones may enroll from behind one NAT).
DEVICE_FAILURE_LIMIT = 5
SOURCE_FAILURE_LIMIT = 20
FAILURE_WINDOW = 15 * 60
LOCKOUT = 15 * 60


@dataclass(frozen=True)
class IssuedCode:
    device_id: int
    mac: str
    code: str
    expires_at: datetime


def _issue_once(*, tenant: Tenant, actor: Actor, devices: QuerySet) -> list[IssuedCode]:
    targets = list(devices.order_by("pk").values_list("pk", "mac"))  # one lock order for concurrent issues
    if not targets:
        return []
    ids = [pk for pk, _ in targets]
    table = VerificationCode._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT device_id, digest FROM {table} WHERE tenant_id = %s AND ciphertext IS NOT NULL",  # noqa: S608 - table name from the model
            [tenant.pk],
        )
        live = cursor.fetchall()
        # A device's current digest counts as taken too: the unique index is checked row by row,
        # before that device's own row is replaced.
        taken = {bytes(digest) for _, digest in live}
        targeted = set(ids)
        if sum(1 for device_id, _ in live if device_id not in targeted) + len(ids) > MAX_LIVE_CODES:
            raise ValidationError(
                f"At most {MAX_LIVE_CODES:,} devices can hold a live verification code at once. "
                "Enroll the phones that have one, or wait for their codes to expire."
            )
        codes, ciphertexts, digests = [], [], []
        for _ in ids:
            while True:
                code = f"{secrets.randbelow(CODE_SPACE):06d}"
                digest = code_digest(code)
                if digest not in taken:
                    break
            taken.add(digest)
            codes.append(code)
            ciphertexts.append(code_encrypt(code))
            digests.append(digest)
    now = timezone.now()
    expires_at = now + CODE_LIFETIME
    write = _codes_write_arrays if connection.vendor == "postgresql" else _codes_write_orm
    write(
        tenant=tenant, actor=actor, ids=ids, ciphertexts=ciphertexts, digests=digests, at=now, expires_at=expires_at
    )
    return [
        IssuedCode(device_id=pk, mac=mac, code=code, expires_at=expires_at)
        for (pk, mac), code in zip(targets, codes, strict=True)
    ]


def _codes_write_arrays(
    *, tenant: Tenant, actor: Actor, ids: list[int], ciphertexts: list[str], digests: list[bytes], at: datetime,
    expires_at: datetime,
) -> None:
    """One statement for any number of devices; replacing the row revokes the previous code."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {VerificationCode._meta.db_table}
                (tenant_id, device_id, ciphertext, digest, issued_at, expires_at, used_at)
            SELECT %s, u.device_id, u.ciphertext, u.digest, %s, %s, NULL
            FROM unnest(%s::bigint[], %s::text[], %s::bytea[]) AS u(device_id, ciphertext, digest)
            ON CONFLICT (device_id) DO UPDATE SET
                ciphertext = EXCLUDED.ciphertext, digest = EXCLUDED.digest,
                issued_at = EXCLUDED.issued_at, expires_at = EXCLUDED.expires_at, used_at = NULL
            """,  # noqa: S608 - table name from the model
            [tenant.pk, at, expires_at, ids, ciphertexts, digests],
        )
        _audit_issue(cursor, tenant=tenant, actor=actor, ids=ids, at=at, expires_at=expires_at)


def _codes_write_orm(
    *, tenant: Tenant, actor: Actor, ids: list[int], ciphertexts: list[str], digests: list[bytes], at: datetime,
    expires_at: datetime,
) -> None:
    """The same for SQLite (`make run`), which has no arrays, through the ORM."""
    VerificationCode.objects.bulk_create(
        [
            VerificationCode(
                tenant=tenant, device_id=pk, ciphertext=ciphertext, digest=digest, issued_at=at,
                expires_at=expires_at, used_at=None,
            )
            for pk, ciphertext, digest in zip(ids, ciphertexts, digests, strict=True)
        ],
        update_conflicts=True,
        unique_fields=["device"],
        update_fields=["ciphertext", "digest", "issued_at", "expires_at", "used_at"],
        batch_size=500,
    )
    audit_record_many(
        tenant=tenant, actor=actor, action="verification_code.issue",
        objects=Device.objects.filter(pk__in=ids).only("pk", "mac", "display_name"),
        details={"expires_at": expires_at.isoformat()},
    )


def _audit_issue(cursor, *, tenant: Tenant, actor: Actor, ids: list[int], at: datetime, expires_at: datetime) -> None:
    """One audit row per device, written by the database in one INSERT … SELECT: building 100,000
    AuditEvent objects in Python would cost more than generating the codes."""
    audit, device = AuditEvent._meta, Device._meta
    columns = [
        audit.get_field(name).column
        for name in (
            "tenant", "actor_type", "actor_user", "actor_label", "action",
            "object_type", "object_id", "object_repr", "details", "created_at",
        )
    ]
    cursor.execute(
        f"""
        INSERT INTO {audit.db_table} ({", ".join(columns)})
        SELECT %s, %s, %s, %s, 'verification_code.issue', 'device', d.id,
               LEFT(COALESCE(NULLIF(d.display_name, ''), d.mac), 200), %s::jsonb, %s
        FROM {device.db_table} d WHERE d.id = ANY(%s::bigint[])
        """,  # noqa: S608 - names from the models
        [
            tenant.pk, actor.type, actor.user.pk if actor.user else None, actor.label[:200],
            json.dumps({"expires_at": expires_at.isoformat()}), at, ids,
        ],
    )


def _issue(*, tenant: Tenant, actor: Actor, devices: QuerySet) -> list[IssuedCode]:
    attempts = 0
    while True:
        try:
            with transaction.atomic():
                return _issue_once(tenant=tenant, actor=actor, devices=devices)
        except IntegrityError:
            # A concurrent issue took one of our codes (or removed a device) between our read and
            # our write: read again and draw again.
            attempts += 1
            if attempts == 3:
                raise


def verification_code_issue(*, device: Device, actor: Actor) -> IssuedCode:
    """A new code for one device waiting on activation; its previous code stops working."""
    if device.state != DeviceState.WAITING_ON_ACTIVATION:
        raise ValidationError(
            f"{device.mac} is already enrolled: verification codes are for devices waiting on activation."
        )
    devices = Device.objects.filter(pk=device.pk, tenant_id=device.tenant_id, state=DeviceState.WAITING_ON_ACTIVATION)
    issued = _issue(tenant=device.tenant, actor=actor, devices=devices)
    if not issued:
        raise ValidationError(f"{device.mac} was enrolled or removed meanwhile.")
    return issued[0]


def verification_codes_issue(*, tenant: Tenant, actor: Actor, ids=None, state: str | None = None) -> list[IssuedCode]:
    """New codes for the given device ids, or for every device in `state` (only
    `waiting_on_activation` has a use for codes). Ids of other tenants' devices and of enrolled
    devices are skipped, never issued; the result lists what was issued."""
    if (ids is None) == (state is None):
        raise ValueError("give either ids or state")
    if state is not None and state != DeviceState.WAITING_ON_ACTIVATION:
        raise ValidationError({"state": ["Verification codes are only for devices waiting on activation."]})
    devices = Device.objects.filter(tenant=tenant, state=DeviceState.WAITING_ON_ACTIVATION)
    if ids is not None:
        devices = devices.filter(pk__in=list(ids))
    return _issue(tenant=tenant, actor=actor, devices=devices)


@transaction.atomic
def verification_codes_sweep(*, now: datetime | None = None) -> int:
    """Wipe codes past their expiry (the digest stays, so a late phone hears "expired")."""
    return VerificationCode.objects.filter(ciphertext__isnull=False, expires_at__lte=now or timezone.now()).update(
        ciphertext=None
    )


def verification_codes_viewed(*, tenant: Tenant, actor: Actor, role: str, devices) -> None:
    """Record that a technician was shown these devices' live codes: one INSERT per page shown."""
    if role != Role.TECHNICIAN:
        return
    shown = [device for device in devices if live_code(device) is not None]
    if shown:
        audit_record_many(tenant=tenant, actor=actor, action="verification_code.view", objects=shown)


def verification_codes_exported(*, tenant: Tenant, actor: Actor, role: str, filters: dict) -> None:
    """Record the export; a technician's also as a view of each code it lists."""
    audit_record(tenant=tenant, actor=actor, action="verification_code.export", details={"filters": filters})
    if role == Role.TECHNICIAN:
        exported = verification_code_export_devices(tenant=tenant, filters=filters)
        audit_record_many(
            tenant=tenant, actor=actor, action="verification_code.view",
            objects=exported.select_related(None).only("pk", "mac", "display_name").iterator(chunk_size=2000),
        )


# --- Checking a code: the service the SIP edge calls when a phone dials *55*<code> ---------------


@dataclass(frozen=True)
class CodeCheck:
    outcome: str
    device: Device | None = None
    retry_after: int = 0  # seconds, when locked

    @property
    def ok(self) -> bool:
        return self.outcome == CheckOutcome.ENROLLED

    @property
    def message(self) -> str:
        """For the SIP Warning header."""
        if self.outcome == CheckOutcome.LOCKED:
            return f"Too many wrong codes; try again in {max(1, math.ceil(self.retry_after / 60))} min"
        return CheckOutcome(self.outcome).label


class _Attempts:
    """Attempts in a fixed window, in the shared cache (Redis), never in process memory.

    Each attempt is counted *before* the code is compared and given back if it succeeds, so
    concurrent guesses cannot slip past the limit between a compare and its count."""

    def __init__(self, scope: str, ident, limit: int):
        self.limit = limit
        self.count = 0
        self.counter_key = f"enrollment:attempts:{scope}:{ident}"
        self.lock_key = f"enrollment:locked:{scope}:{ident}"

    def retry_after(self) -> int:
        """Seconds until the lockout ends; 0 when not locked."""
        until = cache.get(self.lock_key)
        return max(1, math.ceil(until - time.time())) if until else 0

    def begin(self) -> bool:
        cache.add(self.counter_key, 0, timeout=FAILURE_WINDOW)
        try:
            self.count = cache.incr(self.counter_key)
        except ValueError:  # the window ended between add and incr
            cache.add(self.counter_key, 1, timeout=FAILURE_WINDOW)
            self.count = 1
        # Over the limit, or locked since retry_after() was asked: refuse without comparing.
        if self.count > self.limit or cache.get(self.lock_key) is not None:
            self.give_back()
            return False
        return True

    def give_back(self) -> None:
        with contextlib.suppress(ValueError):  # the window ended meanwhile
            cache.decr(self.counter_key)

    def fail(self) -> bool:
        """Keep the attempt as a failure; True when it starts a lockout."""
        if self.count < self.limit:
            return False
        # Lock first, then reset the count: an attempt that starts in between sees the lock.
        started = cache.add(self.lock_key, time.time() + LOCKOUT, timeout=LOCKOUT)
        cache.delete(self.counter_key)
        return started


def _device_of(mac_or_device) -> Device | None:
    if isinstance(mac_or_device, Device):
        return mac_or_device
    try:
        mac = normalize_mac(str(mac_or_device))
    except InvalidMac:
        return None
    try:
        return Device.objects.select_related("tenant").get(mac=mac)
    except Device.DoesNotExist:
        return None


def _consume(*, device: Device, code: str, source: str) -> str:
    """Compare and, on a match, use the code and enroll the device, in one transaction: the row
    lock makes two phones racing with the same code end with exactly one enrolled."""
    with transaction.atomic():
        try:  # get(), not first(): its ORDER BY id LIMIT 1 walked the primary key of 100,000 rows
            row = VerificationCode.objects.select_for_update().get(device_id=device.pk)
        except VerificationCode.DoesNotExist:
            return CheckOutcome.NO_CODE
        # Compare keyed digests in constant time: neither the timing nor the database reveals digits.
        if not hmac.compare_digest(bytes(row.digest), code_digest(code)):
            return CheckOutcome.WRONG
        if row.used_at is not None:
            return CheckOutcome.USED
        now = timezone.now()
        if row.ciphertext is None or row.expires_at <= now:
            if row.ciphertext is not None:
                row.ciphertext = None
                row.save(update_fields=["ciphertext"])
            return CheckOutcome.EXPIRED
        row.ciphertext = None
        row.used_at = now
        row.save(update_fields=["ciphertext", "used_at"])
        # Enrolling here, not in a separate service: a used code must never leave its phone
        # still waiting on activation with nothing left to dial.
        if Device.objects.filter(pk=device.pk, state=DeviceState.WAITING_ON_ACTIVATION).update(
            state=DeviceState.WAITING_FOR_SIGN_IN, updated_at=now
        ):
            device.state = DeviceState.WAITING_FOR_SIGN_IN
        audit_record(
            tenant=device.tenant, actor=Actor.phone(device.mac), action="device.enroll", obj=device,
            details={"source": source},
        )
        return CheckOutcome.ENROLLED


def verification_code_check(*, mac_or_device, code: str, source: str) -> CodeCheck:
    """Check the code a phone dialled (`*55*<code>`) for the device with that MAC, from `source`
    (the sender's IP address). On success the code is used up and the device moves to
    `waiting_for_sign_in`. Every failure counts toward the device's lockout (5 in 15 minutes lock
    it for 15 minutes) and the source's (20); a locked device or source is refused unchecked."""
    code = str(code or "").strip()[:32]
    device = _device_of(mac_or_device)
    by_source = _Attempts("source", source, SOURCE_FAILURE_LIMIT)
    if wait := by_source.retry_after():
        return CodeCheck(CheckOutcome.LOCKED, device, retry_after=wait)
    if device is None:
        if not by_source.begin():
            return CodeCheck(CheckOutcome.LOCKED, retry_after=LOCKOUT)
        if by_source.fail():
            logger.warning("verification codes: source %s locked out after %s failures", source, by_source.limit)
        return CodeCheck(CheckOutcome.NOT_ONBOARDED)

    by_device = _Attempts("device", device.pk, DEVICE_FAILURE_LIMIT)
    if wait := by_device.retry_after():
        return CodeCheck(CheckOutcome.LOCKED, device, retry_after=wait)
    if not by_source.begin():
        return CodeCheck(CheckOutcome.LOCKED, device, retry_after=LOCKOUT)
    if not by_device.begin():
        by_source.give_back()
        return CodeCheck(CheckOutcome.LOCKED, device, retry_after=LOCKOUT)

    try:
        outcome = _consume(device=device, code=code, source=source)
    except BaseException:
        by_device.give_back()
        by_source.give_back()
        raise
    if outcome == CheckOutcome.ENROLLED:
        by_device.give_back()
        by_source.give_back()
        return CodeCheck(outcome, device)

    actor = Actor.phone(device.mac)
    audit_record(
        tenant=device.tenant, actor=actor, action="verification_code.reject", obj=device,
        details={"outcome": str(outcome), "source": source},
    )
    if by_device.fail():
        audit_record(
            tenant=device.tenant, actor=actor, action="verification_code.lockout", obj=device,
            details={"source": source, "failures": DEVICE_FAILURE_LIMIT, "minutes": LOCKOUT // 60},
        )
    if by_source.fail():
        logger.warning("verification codes: source %s locked out after %s failures", source, by_source.limit)
    return CodeCheck(outcome, device)


# --- Pairing (sign-in) and sign-out: the Sign-in and Sign-out keys, the pairing page, the admin --

# RFC 8628 §6.1: 20 consonants (no vowels, so no words), 8 of them ≈ 34.5 bits; with 5 guesses per
# window (§5.1) the chance of hitting a live code stays about 2^-32.
PAIRING_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
PAIRING_CODE_LENGTH = 8
PAIRING_LIFETIME = timedelta(minutes=15)
PAIRING_FAILURE_LIMIT = 5
_PAIRING_SEPARATORS = re.compile(r"[\s\-]+")


def pairing_code_normalize(text) -> str | None:
    """`bcdf-ghjk`, `BCDF GHJK` or `BCDFGHJK` → `BCDFGHJK`; None when it cannot be a pairing code."""
    code = _PAIRING_SEPARATORS.sub("", str(text or "")).upper()
    if len(code) != PAIRING_CODE_LENGTH or not set(code) <= set(PAIRING_ALPHABET):
        return None
    return code


def pairing_code_display(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def pairing_verification_url() -> str:
    return f"{settings.PUBLIC_BASE_URL}{reverse('enrollment:pair')}"


class PairingStart(NamedTuple):
    request: PairingRequest
    user_code: str  # as the phone shows it: XXXX-XXXX
    verification_url: str

    @property
    def verification_url_complete(self) -> str:
        """The URL with the code in it (RFC 8628's verification_uri_complete): the page comes prefilled."""
        return f"{self.verification_url}?code={self.user_code}"

    @property
    def expires_in(self) -> int:
        return max(0, int((self.request.expires_at - timezone.now()).total_seconds()))


def pairing_requests_sweep(*, now: datetime | None = None) -> int:
    """Mark pending requests past their expiry expired: a code entered later is told "expired" either
    way; the sweep keeps what the pages and the database say true between entries."""
    return PairingRequest.objects.filter(status=PairingStatus.PENDING, expires_at__lte=now or timezone.now()).update(
        status=PairingStatus.EXPIRED
    )


def pairing_request_start(*, device: Device, actor: Actor, now: datetime | None = None) -> PairingStart:
    """A new pairing request for an enrolled phone waiting for sign-in: the SIP edge calls this when
    the Sign-in key is pressed, an admin when choosing "Sign in a user". Returns the request, the
    user code (only here: it is stored as a keyed digest) and the URL where a user enters it. The
    device's previous request, if still pending, stops working."""
    now = now or timezone.now()
    for attempt in range(3):
        code = "".join(secrets.choice(PAIRING_ALPHABET) for _ in range(PAIRING_CODE_LENGTH))
        try:
            with transaction.atomic():
                # The device row first, as in pairing_approve: concurrent starts and approvals queue up.
                locked = Device.objects.select_for_update().filter(pk=device.pk, tenant_id=device.tenant_id).first()
                if locked is None:
                    raise ValidationError(f"{device.mac} was removed from the inventory.")
                if locked.state == DeviceState.WAITING_ON_ACTIVATION:
                    raise ValidationError(
                        f"{device.mac} is not enrolled yet: dial *55* with its verification code first."
                    )
                if locked.state == DeviceState.SIGNED_IN:
                    raise ValidationError(f"{device.mac} is already signed in. Sign it out first.")
                _pairing_close_pending(device_id=device.pk, now=now)
                request = PairingRequest.objects.create(
                    tenant_id=device.tenant_id, device_id=device.pk, digest=pairing_code_digest(code),
                    created_at=now, expires_at=now + PAIRING_LIFETIME,
                    requested_by=actor.user, requested_by_label=actor.label[:200],
                )
                audit_record(
                    tenant=device.tenant, actor=actor, action="pairing.start", obj=device,
                    details={"request": request.pk, "expires_at": request.expires_at.isoformat()},
                )
        except IntegrityError:
            # Another pending request of the tenant drew the same code (about 1 in 2^34 per pair).
            if attempt == 2:
                raise
            continue
        return PairingStart(request, pairing_code_display(code), pairing_verification_url())


def _pairing_close_pending(*, device_id: int, now: datetime) -> None:
    pending = PairingRequest.objects.filter(device_id=device_id, status=PairingStatus.PENDING)
    pending.filter(expires_at__lte=now).update(status=PairingStatus.EXPIRED)
    pending.update(status=PairingStatus.REVOKED)


@dataclass(frozen=True)
class PairingResult:
    outcome: str
    device: Device | None = None
    request: PairingRequest | None = None
    retry_after: int = 0  # seconds, when locked

    @property
    def ok(self) -> bool:
        return self.outcome == PairingOutcome.PAIRED

    @property
    def message(self) -> str:
        if self.outcome == PairingOutcome.LOCKED:
            minutes = max(1, math.ceil(self.retry_after / 60))
            return f"Too many wrong codes. Try again in {minutes} minute{'' if minutes == 1 else 's'}."
        return PairingOutcome(self.outcome).label


def pairing_approve(*, user: User, code: str, source: str, now: datetime | None = None) -> PairingResult:
    """A user of the tenant entered `code` (from `source`, their IP address) on the pairing page: the
    phone is signed in with them and their phone number, its wanted config version is raised and it
    is check-synced, so it fetches a config that shows them. A code of another tenant is as wrong as
    a code that does not exist. 5 wrong codes per user in 15 minutes lock the user out for 15
    minutes (RFC 8628 §5.1); input that cannot be a code at all guesses nothing and is not counted."""
    membership = Membership.objects.select_related("tenant").filter(user=user).first()
    if membership is None:
        raise ValidationError("Only members of an organization can sign in a phone.")
    tenant, actor = membership.tenant, Actor.of_user(user)
    attempts = _Attempts("pairing-user", user.pk, PAIRING_FAILURE_LIMIT)
    if wait := attempts.retry_after():
        return PairingResult(PairingOutcome.LOCKED, retry_after=wait)
    normalized = pairing_code_normalize(code)
    if normalized is None:
        return PairingResult(PairingOutcome.MALFORMED)
    if not attempts.begin():
        return PairingResult(PairingOutcome.LOCKED, retry_after=LOCKOUT)
    try:
        result = _pairing_consume(
            tenant=tenant, user=user, actor=actor, digest=pairing_code_digest(normalized), source=source,
            now=now or timezone.now(),
        )
    except BaseException:
        attempts.give_back()
        raise
    if result.outcome != PairingOutcome.WRONG:
        # A known code, even a dead one, is no guess: only wrong codes count toward the lockout.
        attempts.give_back()
    if not result.ok:
        audit_record(
            tenant=tenant, actor=actor, action="pairing.reject", obj=result.device,
            details={"outcome": str(result.outcome), "source": source},
        )
    if result.outcome == PairingOutcome.WRONG and attempts.fail():
        audit_record(
            tenant=tenant, actor=actor, action="pairing.lockout", obj=user,
            details={"source": source, "failures": PAIRING_FAILURE_LIMIT, "minutes": LOCKOUT // 60},
        )
    return result


def _pairing_consume(
    *, tenant: Tenant, user: User, actor: Actor, digest: bytes, source: str, now: datetime
) -> PairingResult:
    """Match and, if the request is live, approve it and sign the phone in, in one transaction. The
    device row is locked first, then the request is read again: of two approvals of one code, the
    second waits for the first and then finds the code used."""
    matching = PairingRequest.objects.filter(tenant=tenant, digest=digest).order_by("-created_at", "-id")
    device_id = matching.values_list("device_id", flat=True).first()
    if device_id is None:
        return PairingResult(PairingOutcome.WRONG)
    with transaction.atomic():
        device = Device.objects.select_for_update().filter(pk=device_id, tenant=tenant).first()
        request = matching.select_for_update().filter(device_id=device_id).first()
        if device is None or request is None:  # removed meanwhile
            return PairingResult(PairingOutcome.WRONG)
        if request.status == PairingStatus.APPROVED:
            return PairingResult(PairingOutcome.USED, device, request)
        if request.status == PairingStatus.REVOKED:
            return PairingResult(PairingOutcome.REVOKED, device, request)
        if request.status == PairingStatus.EXPIRED or request.expires_at <= now:
            if request.status != PairingStatus.EXPIRED:
                request.status = PairingStatus.EXPIRED
                request.save(update_fields=["status"])
            return PairingResult(PairingOutcome.EXPIRED, device, request)
        if device.state == DeviceState.WAITING_ON_ACTIVATION:
            return PairingResult(PairingOutcome.NOT_ENROLLED, device, request)

        request.status, request.approved_by, request.approved_at = PairingStatus.APPROVED, user, now
        request.approved_from = (source or "")[:64]
        request.save(update_fields=["status", "approved_by", "approved_at", "approved_from"])
        previous_user_id = device.signed_in_user_id
        device.state, device.signed_in_user, device.phone_number = DeviceState.SIGNED_IN, user, user.phone_number
        device.save(update_fields=["state", "signed_in_user", "phone_number", "updated_at"])
        details = {"user": user.username, "phone_number": user.phone_number, "source": source, "request": request.pk}
        if previous_user_id and previous_user_id != user.pk:
            details["previous_user_id"] = previous_user_id
        audit_record(tenant=tenant, actor=actor, action="device.sign_in", obj=device, details=details)
        _device_config_changed(device=device, actor=actor)
    return PairingResult(PairingOutcome.PAIRED, device, request)


def _device_config_changed(*, device: Device, actor: Actor) -> None:
    """What the phone shows changed: raise its wanted version and check-sync it (on commit)."""
    device_wanted_version_raise(device=device)
    device_commands_request(tenant=device.tenant, actor=actor, kind=CommandKind.RESYNC, ids=[device.pk])


def device_sign_out(*, device: Device, actor: Actor) -> bool:
    """Sign the phone out (the Sign-out key, or an admin): back to `waiting_for_sign_in` with no
    user and no number, wanted version raised, check-synced. Signing out a phone nobody is signed in
    to changes nothing and returns False; True when it signed someone out. `device` is refreshed."""
    with transaction.atomic():
        locked = Device.objects.select_for_update().filter(pk=device.pk, tenant_id=device.tenant_id).first()
        if locked is None or locked.state != DeviceState.SIGNED_IN:
            signed_out = False
        else:
            previous = locked.signed_in_user
            locked.state, locked.signed_in_user, locked.phone_number = DeviceState.WAITING_FOR_SIGN_IN, None, ""
            locked.save(update_fields=["state", "signed_in_user", "phone_number", "updated_at"])
            audit_record(
                tenant=locked.tenant, actor=actor, action="device.sign_out", obj=locked,
                details={"user": previous.username if previous else None},
            )
            _device_config_changed(device=locked, actor=actor)
            signed_out = True
    if locked is not None:
        device.refresh_from_db()
    return signed_out
