"""Policies and their assignments, and the versioned sync that carries them to the phones.

Every change that alters devices' effective settings raises their `wanted_version` in one UPDATE
whose WHERE names the affected devices with subqueries (never a loop over devices). A device whose
`synced_version` is behind gets a `policy_sync` DeviceCommand when it refreshes its registration
(`devices_policy_sync_if_behind`) and from the hourly beat task (`policy_sync_fan_out`); serving
its config records the version it got as synced."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.db.models.functions import Lower
from django.utils import timezone

from devices.choices import PENDING_COMMAND_STATUSES, CommandKind, CommandStatus, DeviceState
from devices.models import Device, DeviceCommand, DeviceModel
from devices.services import DEFAULT_EVENTS, device_commands_request
from gateway.tasks import device_commands_enqueue
from policies.choices import PolicyKind
from policies.models import Policy, PolicyAssignment
from policies.schema import E164, settings_clean, settings_default
from portal.mac import InvalidMac, normalize_mac
from portal.models import AuditEvent, Membership, Tenant, User
from portal.services import Actor, audit_record, audit_record_many

DEFAULT_NAME = "Global (Org-wide default)"
REFRESH_ACTOR = Actor.system("policy sync (registration refresh)")
HOURLY_ACTOR = Actor.system("policy sync (hourly)")


# Which devices a change touches -------------------------------------------------------------------
# Uncorrelated `IN (SELECT …)` subqueries: PostgreSQL hashes each once, so a change that touches a
# whole tenant costs one pass over its devices. The subqueries never yield NULL (a NULL in NOT IN
# would make it match nothing).


def _device_ids(tenant_id: int, **filters) -> QuerySet:
    return PolicyAssignment.objects.filter(tenant_id=tenant_id, device__isnull=False, **filters).values("device_id")


def _user_ids(tenant_id: int, **filters) -> QuerySet:
    return PolicyAssignment.objects.filter(tenant_id=tenant_id, user__isnull=False, **filters).values("user_id")


def _holds_own(tenant_id: int, kind: str) -> Q:
    """The device has a policy of `kind` assigned to it."""
    return Q(pk__in=_device_ids(tenant_id, kind=kind))


def _user_in(users: QuerySet) -> Q:
    # NULL-safe, also under NOT: a device with nobody signed in is in no set of users.
    return Q(signed_in_user__isnull=False, signed_in_user__in=users)


def _user_holds(tenant_id: int, kind: str) -> Q:
    """The device's signed-in user has a policy of `kind` assigned."""
    return _user_in(_user_ids(tenant_id, kind=kind))


def _resolves_to(policy: Policy) -> Q:
    """Devices whose effective policy of `policy.kind` is `policy` (device > user > tenant default)."""
    tenant_id, kind = policy.tenant_id, policy.kind
    match = Q(pk__in=_device_ids(tenant_id, policy=policy)) | (
        ~_holds_own(tenant_id, kind) & _user_in(_user_ids(tenant_id, policy=policy))
    )
    if policy.is_default:
        match |= ~_holds_own(tenant_id, kind) & ~_user_holds(tenant_id, kind)
    return match


def _versions_raise(devices: QuerySet, *, now: datetime | None = None, **also) -> int:
    """One UPDATE: wanted_version + 1 for every device of `devices`; a device that was in sync starts
    pending now, one already behind keeps the moment it fell behind."""
    now = now or timezone.now()
    return devices.update(
        wanted_version=F("wanted_version") + 1,
        sync_pending_since=Case(
            When(
                Q(synced_version__lt=F("wanted_version"), sync_pending_since__isnull=False),
                then=F("sync_pending_since"),
            ),
            default=Value(now),
        ),
        **also,
    )


def _tenant_devices(tenant_id: int) -> QuerySet:
    return Device.objects.filter(tenant_id=tenant_id)


# Policies ---------------------------------------------------------------------------------------


def policy_defaults_ensure(*, tenant: Tenant) -> dict[str, Policy]:
    """The tenant's default policy of each kind, created with the built-in settings when missing.
    Safe to run concurrently: the one-default-per-kind constraint keeps a single one."""
    defaults = {p.kind: p for p in Policy.objects.filter(tenant=tenant, is_default=True)}
    missing = [kind for kind in PolicyKind.values if kind not in defaults]
    if missing:
        Policy.objects.bulk_create(
            [
                Policy(tenant=tenant, kind=kind, name=DEFAULT_NAME, is_default=True, settings=settings_default(kind))
                for kind in missing
            ],
            ignore_conflicts=True,
        )
        defaults = {p.kind: p for p in Policy.objects.filter(tenant=tenant, is_default=True)}
    return defaults


def _clean_name(*, tenant: Tenant, kind: str, name, exclude_pk: int | None = None) -> str:
    name = "" if name is None else str(name).strip()
    if not name:
        raise ValidationError({"name": ["This field is required."]})
    if len(name) > 100:
        raise ValidationError({"name": ["Ensure this value has at most 100 characters."]})
    taken = Policy.objects.filter(tenant=tenant, kind=kind, name__iexact=name).exclude(pk=exclude_pk)
    if taken.exists():
        raise ValidationError({"name": [f'A {PolicyKind(kind).label.lower()} policy named "{name}" already exists.']})
    return name


def _clean_description(value) -> str:
    text = "" if value is None else str(value).strip()
    if len(text) > 255:
        raise ValidationError({"description": ["Ensure this value has at most 255 characters."]})
    return text


def policy_create(
    *, tenant: Tenant, actor: Actor, kind: str, name: str, description: str = "", settings: dict | None = None
) -> Policy:
    """A new policy of `kind`; settings not given take the built-in defaults. Assigning it is a
    separate step, so creating one changes no device."""
    errors = {}
    try:
        cleaned = settings_clean(kind, settings if settings is not None else {})
    except ValidationError as error:
        if "kind" in error.message_dict:
            raise
        errors.update(error.message_dict)
    try:
        name = _clean_name(tenant=tenant, kind=kind, name=name)
    except ValidationError as error:
        errors.update(error.message_dict)
    try:
        description = _clean_description(description)
    except ValidationError as error:
        errors.update(error.message_dict)
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            policy = Policy.objects.create(
                tenant=tenant, kind=kind, name=name, description=description, settings=cleaned
            )
            audit_record(tenant=tenant, actor=actor, action="policy.create", obj=policy, details={"kind": kind})
    except IntegrityError:  # the same name, created concurrently
        raise ValidationError(
            {"name": [f'A {PolicyKind(kind).label.lower()} policy named "{name}" already exists.']}
        ) from None
    return policy


def policy_update(*, policy: Policy, actor: Actor, data: dict) -> tuple[Policy, int]:
    """Change name, description and/or settings (a partial update of them). A settings change bumps
    the policy's version and raises every device it is effective on. Returns the policy and how
    many devices were raised."""
    errors: dict[str, list[str]] = {}
    changes: dict[str, list] = {}
    with transaction.atomic():
        policy = Policy.objects.select_for_update().get(pk=policy.pk)  # edits of one policy queue up
        if "name" in data:
            try:
                name = _clean_name(tenant=policy.tenant, kind=policy.kind, name=data["name"], exclude_pk=policy.pk)
                if name != policy.name:
                    changes["name"] = [policy.name, name]
                    policy.name = name
            except ValidationError as error:
                errors.update(error.message_dict)
        if "description" in data:
            try:
                description = _clean_description(data["description"])
                if description != policy.description:
                    changes["description"] = [policy.description, description]
                    policy.description = description
            except ValidationError as error:
                errors.update(error.message_dict)
        if "settings" in data:
            try:
                cleaned = settings_clean(policy.kind, data["settings"], base=policy.settings)
            except ValidationError as error:
                errors.update(error.message_dict)
            else:
                changed = {k: [policy.settings.get(k), v] for k, v in cleaned.items() if policy.settings.get(k) != v}
                if changed:
                    changes["settings"] = changed
                    policy.settings = cleaned
                    policy.version += 1
        if errors:
            raise ValidationError(errors)
        if not changes:
            return policy, 0
        policy.save()
        raised = (
            _versions_raise(_tenant_devices(policy.tenant_id).filter(_resolves_to(policy)))
            if "settings" in changes
            else 0
        )
        audit_record(
            tenant=policy.tenant,
            actor=actor,
            action="policy.update",
            obj=policy,
            details={**changes, "devices_raised": raised},
        )
    return policy, raised


def policy_delete(*, policy: Policy, actor: Actor) -> int:
    """Delete a policy that is not a tenant default; its devices and users fall back (user, then
    default) and are raised. Returns how many devices were raised."""
    if policy.is_default:
        raise ValidationError(
            f'"{policy}" is the default {PolicyKind(policy.kind).label.lower()} policy. '
            "Make another policy the default before deleting it."
        )
    with transaction.atomic():
        raised = _versions_raise(_tenant_devices(policy.tenant_id).filter(_resolves_to(policy)))
        audit_record(
            tenant=policy.tenant,
            actor=actor,
            action="policy.delete",
            obj=policy,
            details={"kind": policy.kind, "devices_raised": raised},
        )
        policy.delete()
    return raised


# Assignments ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssignResult:
    assigned: int  # devices or users now holding the policy (or 1 for a new tenant default)
    raised: int  # devices whose effective settings changed, and so their wanted version


def _tenant_device_ids(*, tenant: Tenant, ids) -> list[int]:
    """Devices of the tenant by id or MAC address (any notation)."""
    if not isinstance(ids, list | tuple | set):
        raise ValidationError({"devices": ["Expected a list of device ids or MAC addresses."]})
    wanted, macs, errors = set(), {}, []
    for value in ids:
        if isinstance(value, int) and not isinstance(value, bool):
            wanted.add(value)
            continue
        try:
            macs[normalize_mac(str(value))] = str(value)
        except InvalidMac:
            errors.append(f'"{value}" is not a device id or a MAC address.')
    if errors:
        raise ValidationError({"devices": errors})
    found = dict(
        Device.objects.filter(tenant=tenant).filter(Q(pk__in=wanted) | Q(mac__in=macs)).values_list("pk", "mac")
    )
    # Another tenant's device is as unknown as one that does not exist.
    unknown = [str(pk) for pk in sorted(wanted - set(found))] + sorted(set(macs) - set(found.values()))
    if unknown:
        shown = ", ".join(unknown[:20]) + (" …" if len(unknown) > 20 else "")
        raise ValidationError({"devices": [f"No such device: {shown}."]})
    return sorted(found)


def _tenant_user_ids(*, tenant: Tenant, users) -> list[int]:
    """Users of the tenant by e-mail address (the device JSON's `user`) or id."""
    if not isinstance(users, list | tuple | set):
        raise ValidationError({"users": ["Expected a list of e-mail addresses."]})
    ids = {u for u in users if isinstance(u, int) and not isinstance(u, bool)}
    emails = {str(u).strip().lower() for u in users if u not in ids}
    members = (
        Membership.objects.filter(tenant=tenant)
        .annotate(email=Lower("user__username"))
        .filter(Q(user_id__in=ids) | Q(email__in=emails))
    )
    found = dict(members.values_list("user_id", "email"))
    unknown = sorted(str(i) for i in ids - set(found)) + sorted(emails - set(found.values()))
    if unknown:
        shown = ", ".join(unknown[:20]) + (" …" if len(unknown) > 20 else "")
        raise ValidationError({"users": [f"No such user in your organization: {shown}."]})
    return sorted(found)


def policies_assign(*, actor: Actor, assignments: list[tuple[Policy, dict]]) -> list[AssignResult]:
    """Several `policy_assign` calls, e.g. `[(policy, {"users": [...]}), (policy, {"devices": [...]})]`,
    as one: all of them or, if any is refused, none."""
    with transaction.atomic():
        return [policy_assign(policy=policy, actor=actor, **targets) for policy, targets in assignments]


def policy_assign(
    *, policy: Policy, actor: Actor, devices=None, users=None, tenant_default: bool = False
) -> AssignResult:
    """Give `policy` to devices (ids), to users (e-mail addresses or ids), or make it the tenant
    default of its kind: exactly one of the three. A device or user holding another policy of the
    kind has it replaced. Only devices whose effective policy changes are raised."""
    given = [name for name, value in (("devices", devices), ("users", users)) if value is not None]
    if tenant_default:
        given.append("tenant_default")
    if len(given) != 1:
        raise ValidationError('Give exactly one of "devices", "users" or "tenant_default": true.')
    tenant, kind = policy.tenant, policy.kind
    policy_defaults_ensure(tenant=tenant)
    with transaction.atomic():
        if tenant_default:
            return _default_set(policy=policy, actor=actor)
        if devices is not None:
            ids = _tenant_device_ids(tenant=tenant, ids=devices)
            raised = _versions_raise(_tenant_devices(tenant.pk).filter(pk__in=ids).exclude(_resolves_to(policy)))
            _assignments_save(policy=policy, actor=actor, holder="device", ids=ids)
            objects = Device.objects.filter(pk__in=ids).only("id", "mac", "display_name")
            audit_record_many(
                tenant=tenant,
                actor=actor,
                action="device.policy_assign",
                objects=objects,
                details={"policy": policy.name, "policy_id": policy.pk, "kind": kind},
            )
        else:
            ids = _tenant_user_ids(tenant=tenant, users=users)
            raised = _versions_raise(
                _tenant_devices(tenant.pk)
                .filter(signed_in_user__in=ids)
                .exclude(_holds_own(tenant.pk, kind))
                .exclude(_resolves_to(policy))
            )
            _assignments_save(policy=policy, actor=actor, holder="user", ids=ids)
        audit_record(
            tenant=tenant,
            actor=actor,
            action="policy.assign",
            obj=policy,
            details={given[0]: len(ids), "devices_raised": raised},
        )
    return AssignResult(assigned=len(ids), raised=raised)


def _assignments_save(*, policy: Policy, actor: Actor, holder: str, ids) -> None:
    """Each `holder` ("device" or "user") of `ids` gets `policy` for its kind, replacing the one it had."""
    PolicyAssignment.objects.bulk_create(
        [
            PolicyAssignment(
                tenant_id=policy.tenant_id,
                policy=policy,
                kind=policy.kind,
                assigned_by_label=actor.label[:200],
                **{f"{holder}_id": pk},
            )
            for pk in ids
        ],
        update_conflicts=True,
        unique_fields=[holder, "kind"],
        update_fields=["policy", "assigned_by_label"],
        batch_size=2000,
    )


def _default_set(*, policy: Policy, actor: Actor) -> AssignResult:
    tenant_id, kind = policy.tenant_id, policy.kind
    # Lock the kind's defaults: two admins switching defaults at once take turns.
    current = Policy.objects.select_for_update().filter(tenant_id=tenant_id, kind=kind, is_default=True).first()
    if current is not None and current.pk == policy.pk:
        return AssignResult(assigned=1, raised=0)
    raised = _versions_raise(
        _tenant_devices(tenant_id).exclude(_holds_own(tenant_id, kind)).exclude(_user_holds(tenant_id, kind))
    )
    Policy.objects.filter(tenant_id=tenant_id, kind=kind, is_default=True).update(is_default=False)
    Policy.objects.filter(pk=policy.pk).update(is_default=True)
    policy.is_default = True
    audit_record(
        tenant=policy.tenant,
        actor=actor,
        action="policy.default",
        obj=policy,
        details={"kind": kind, "previous": current.name if current else None, "devices_raised": raised},
    )
    return AssignResult(assigned=1, raised=raised)


def policy_unassign(*, policy: Policy, actor: Actor, devices=None, users=None) -> AssignResult:
    """Take `policy` back from devices or users, which fall back to the next level (user, then the
    tenant default). Ids that do not hold this policy are left alone."""
    if (devices is None) == (users is None):
        raise ValidationError('Give exactly one of "devices" or "users".')
    tenant, kind = policy.tenant, policy.kind
    tenant_id = tenant.pk
    # After the removal the device resolves to its user's policy, or to the default: no change if that is this one.
    falls_back_here = _user_in(_user_ids(tenant_id, policy=policy))
    if policy.is_default:
        falls_back_here |= ~_user_holds(tenant_id, kind)
    with transaction.atomic():
        if devices is not None:
            ids = _tenant_device_ids(tenant=tenant, ids=devices)
            held = PolicyAssignment.objects.filter(policy=policy, device__in=ids)
            raised = _versions_raise(
                _tenant_devices(tenant_id).filter(pk__in=held.values("device_id")).exclude(falls_back_here)
            )
            removed_objects = list(
                Device.objects.filter(pk__in=held.values("device_id")).only("id", "mac", "display_name")
            )
            removed, _ = held.delete()
            audit_record_many(
                tenant=tenant,
                actor=actor,
                action="device.policy_unassign",
                objects=removed_objects,
                details={"policy": policy.name, "policy_id": policy.pk, "kind": kind},
            )
        else:
            ids = _tenant_user_ids(tenant=tenant, users=users)
            held = PolicyAssignment.objects.filter(policy=policy, user__in=ids)
            raised = 0
            if not policy.is_default:
                raised = _versions_raise(
                    _tenant_devices(tenant_id)
                    .filter(signed_in_user__in=held.values("user_id"))
                    .exclude(_holds_own(tenant_id, kind))
                )
            removed, _ = held.delete()
        audit_record(
            tenant=tenant,
            actor=actor,
            action="policy.unassign",
            obj=policy,
            details={"devices" if devices is not None else "users": removed, "devices_raised": raised},
        )
    return AssignResult(assigned=removed, raised=raised)


# Changes from other flows -------------------------------------------------------------------------


def device_wanted_version_raise(*, device: Device) -> int:
    """The device's config changed for a reason of its own: the pairing flow calls this after
    signing a user in or out (user-level policies and the user's name and number change what the
    phone's config carries). Returns the new wanted version; the caller sends its check-sync."""
    _versions_raise(Device.objects.filter(pk=device.pk))
    device.refresh_from_db(fields=["wanted_version", "sync_pending_since"])
    return device.wanted_version


def user_phone_number_update(*, tenant: Tenant, actor: Actor, user: User, phone_number: str) -> User:
    """A user's number is shown on every phone they are signed in to: update it there as well and
    raise those phones."""
    if not Membership.objects.filter(tenant=tenant, user=user).exists():
        raise ValidationError({"user": ["No such user in your organization."]})
    number = (phone_number or "").strip()
    if number and not E164.fullmatch(number):
        raise ValidationError({"phone_number": ["Enter a phone number in E.164 form, like +14255550100."]})
    if number == user.phone_number:
        return user
    with transaction.atomic():
        previous = user.phone_number
        user.phone_number = number
        user.save(update_fields=["phone_number"])
        raised = _versions_raise(_tenant_devices(tenant.pk).filter(signed_in_user=user), phone_number=number)
        audit_record(
            tenant=tenant,
            actor=actor,
            action="user.phone_number",
            obj=user,
            details={"phone_number": [previous, number], "devices_raised": raised},
        )
    return user


# Sync ---------------------------------------------------------------------------------------------


def devices_policy_sync_if_behind(*, ids, now: datetime | None = None) -> list[DeviceCommand]:
    """The SIP edge calls this for the devices of a batch of REGISTERs that are behind their wanted
    version (after saving the bindings): each that is registered gets a policy_sync command at once,
    unless one is in flight or was asked within POLICY_SYNC_MIN_INTERVAL_SECONDS (phones that
    refresh every minute and ignore check-sync must not get a NOTIFY every minute). One query finds
    them, one request per tenant queues them. Returns the new commands."""
    now = now or timezone.now()
    recent = now - timedelta(seconds=settings.POLICY_SYNC_MIN_INTERVAL_SECONDS)
    asked = DeviceCommand.objects.filter(device=OuterRef("pk"), kind=CommandKind.POLICY_SYNC).filter(
        Q(status__in=PENDING_COMMAND_STATUSES) | Q(created_at__gt=recent)
    )
    due = (
        Device.objects.filter(pk__in=list(ids), synced_version__lt=F("wanted_version"), registration_expires_at__gt=now)
        .exclude(contact_uri="")
        .exclude(Exists(asked))
        .values_list("pk", "tenant_id")
    )
    per_tenant: dict[int, list[int]] = {}
    for pk, tenant_id in due:
        per_tenant.setdefault(tenant_id, []).append(pk)
    tenants = Tenant.objects.in_bulk(per_tenant)
    commands = []
    for tenant_id, device_ids in sorted(per_tenant.items()):
        commands += device_commands_request(
            tenant=tenants[tenant_id], actor=REFRESH_ACTOR, kind=CommandKind.POLICY_SYNC, ids=device_ids
        )
    return commands


def policy_sync_candidates(*, now: datetime) -> QuerySet:
    """Registered, signed-in devices behind their wanted version, in tenants with the gateway on."""
    return Device.objects.filter(
        tenant__sip_gateway_enabled=True,
        state=DeviceState.SIGNED_IN,
        synced_version__lt=F("wanted_version"),
        registration_expires_at__gt=now,
    ).exclude(contact_uri="")


def policy_sync_fan_out(*, now: datetime | None = None) -> int:
    """The hourly beat task: a policy_sync command for every registered, signed-in device that is
    behind (a failed or unanswered sync of the last hour included), unless one is already pending.
    Written POLICY_SYNC_CHUNK at a time by the database (INSERT … SELECT), sent by workers
    POLICY_SYNC_BATCH at a time. Returns how many commands were queued."""
    now = now or timezone.now()
    ids = list(policy_sync_candidates(now=now).order_by("pk").values_list("pk", flat=True))
    chunk, per_tenant = settings.POLICY_SYNC_CHUNK, {}
    for start in range(0, len(ids), chunk):
        with transaction.atomic():
            queued = _policy_sync_insert(device_ids=ids[start : start + chunk], now=now)
            for _, tenant_id in queued:
                per_tenant[tenant_id] = per_tenant.get(tenant_id, 0) + 1
            device_commands_enqueue([pk for pk, _ in queued], kind=CommandKind.POLICY_SYNC)
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                tenant_id=tenant_id,
                actor_type=HOURLY_ACTOR.type,
                actor_label=HOURLY_ACTOR.label,
                action="policy.sync",
                details={"devices": count},
            )
            for tenant_id, count in per_tenant.items()
        ]
    )
    return sum(per_tenant.values())


def _policy_sync_insert(*, device_ids: list[int], now: datetime) -> list[tuple[int, int]]:
    """Queue a policy_sync for each device of `device_ids` still eligible, skipping devices with
    one pending (the one-pending-per-kind index decides, so concurrent runs cannot double it)."""
    if not device_ids:
        return []
    command, device, model = DeviceCommand._meta, Device._meta, DeviceModel._meta
    col = {f.name: f.column for f in command.concrete_fields}
    now = connection.ops.adapt_datetimefield_value(now)  # as the ORM writes and compares it (SQLite: text)
    # Spelled out, not parameters: SQLite matches ON CONFLICT to the partial index by its text.
    pending = ", ".join(f"'{status}'" for status in PENDING_COMMAND_STATUSES)
    sql = f"""
        INSERT INTO {command.db_table} ({col["tenant"]}, {col["device"]}, {col["kind"]}, {col["status"]},
            {col["event"]}, {col["reason"]}, {col["attempt_count"]}, {col["requested_by_label"]},
            {col["created_at"]}, {col["updated_at"]})
        SELECT d.tenant_id, d.id, %s, %s, COALESCE(m.resync_event, %s), '', 0, %s, %s, %s
        FROM {device.db_table} d LEFT JOIN {model.db_table} m ON m.id = d.model_id
        WHERE d.id IN ({", ".join(["%s"] * len(device_ids))}) AND d.state = %s
            AND d.synced_version < d.wanted_version AND d.registration_expires_at > %s AND d.contact_uri <> ''
        ORDER BY d.id
        ON CONFLICT ({col["device"]}, {col["kind"]}) WHERE {col["status"]} IN ({pending}) DO NOTHING
        RETURNING id, {col["tenant"]}
    """  # noqa: S608 - names from the models and the statuses' constants, values as parameters
    params = [
        CommandKind.POLICY_SYNC,
        CommandStatus.QUEUED,
        DEFAULT_EVENTS["resync"],
        HOURLY_ACTOR.label,
        now,
        now,
        *device_ids,
        DeviceState.SIGNED_IN,
        now,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
