"""Reads: policies of a tenant, a device's effective policies (device > user > tenant default) and
settings, and each device's policy sync state."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, Max, OuterRef, Q, QuerySet, Subquery
from django.shortcuts import get_object_or_404

from devices.choices import CommandKind, CommandStatus, DeviceState
from devices.models import Device, DeviceCommand
from policies.choices import PolicyKind, Source, SyncState
from policies.models import Policy, PolicyAssignment
from policies.schema import SETTINGS, Setting, settings_default
from portal.models import Membership, Tenant

# A sync attempt that ended like this leaves the device "Failed" until the next one (hourly).
FAILED_STATUSES = (CommandStatus.REJECTED, CommandStatus.UNREACHABLE)


def policy_list(*, tenant: Tenant, kind: str | None = None) -> QuerySet:
    """The tenant's policies with how many devices and users hold each."""
    policies = Policy.objects.filter(tenant=tenant).annotate(
        device_count=Count("assignments", filter=Q(assignments__device__isnull=False)),
        user_count=Count("assignments", filter=Q(assignments__user__isnull=False)),
    )
    if kind:
        policies = policies.filter(kind=kind)
    return policies.order_by("kind", "-is_default", "name", "id")


def policy_get(*, tenant: Tenant, pk) -> Policy:
    """The tenant's policy or 404: another tenant's policy does not exist for this caller."""
    return get_object_or_404(policy_list(tenant=tenant), pk=pk)


def policy_assignments(*, policy: Policy, limit: int = 500) -> dict:
    """Who holds `policy` directly: devices and users (the first `limit` of each), and their counts."""
    assignments = PolicyAssignment.objects.filter(policy=policy)
    devices = (
        Device.objects.filter(tenant_id=policy.tenant_id, policy_assignments__policy=policy)
        .select_related("signed_in_user")
        .order_by("display_name", "mac")
    )
    users = (
        Membership.objects.filter(tenant_id=policy.tenant_id, user__policy_assignments__policy=policy)
        .select_related("user")
        .order_by("user__username")
    )
    return {
        "devices": list(devices[:limit]),
        "users": [m.user for m in users[:limit]],
        "device_count": assignments.filter(device__isnull=False).count(),
        "user_count": assignments.filter(user__isnull=False).count(),
    }


def tenant_members(*, tenant: Tenant) -> QuerySet:
    """Users of the tenant a policy may be assigned to, for the assignment form."""
    return Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__username")


@dataclass(frozen=True)
class EffectiveSetting:
    setting: Setting
    value: object

    @property
    def display(self) -> str:
        return self.setting.display(self.value)


@dataclass(frozen=True)
class EffectivePolicy:
    kind: str
    policy: Policy | None  # None only for a tenant whose defaults were never created
    source: str
    settings: dict

    @property
    def kind_label(self) -> str:
        return PolicyKind(self.kind).label

    @property
    def source_label(self) -> str:
        return Source(self.source).label

    @property
    def items(self) -> list[EffectiveSetting]:
        return [EffectiveSetting(s, self.settings.get(s.key, s.default)) for s in SETTINGS[self.kind]]


def device_effective_policies(*, device: Device) -> dict[str, EffectivePolicy]:
    """Each kind's effective policy for `device` and where it comes from, in two queries."""
    holders = Q(device=device)
    if device.signed_in_user_id:
        holders |= Q(user_id=device.signed_in_user_id)
    assigned = {
        (a.kind, "device" if a.device_id else "user"): a.policy
        for a in PolicyAssignment.objects.filter(holders, tenant_id=device.tenant_id).select_related("policy")
    }
    defaults = {p.kind: p for p in Policy.objects.filter(tenant_id=device.tenant_id, is_default=True)}
    effective = {}
    for kind in PolicyKind.values:
        if policy := assigned.get((kind, "device")):
            source = Source.DEVICE
        elif policy := assigned.get((kind, "user")):
            source = Source.USER
        else:
            policy, source = defaults.get(kind), Source.TENANT_DEFAULT
        values = {**settings_default(kind), **(policy.settings if policy else {})}
        effective[kind] = EffectivePolicy(kind=kind, policy=policy, source=source, settings=values)
    return effective


def device_effective_settings(*, device: Device) -> dict:
    """The flat settings a provisioning config carries for `device` (keys are unique across kinds):
    `call_forwarding`, `forward_to`, `simultaneous_ring`, `voicemail`, `sign_in_mode`,
    `hot_desking_timeout`, `language`, `time_zone`, `emergency_location`, `notification_number`."""
    merged = {}
    for effective in device_effective_policies(device=device).values():
        merged.update(effective.settings)
    return merged


# Sync state -------------------------------------------------------------------------------------


def _last_policy_sync(field: str) -> Subquery:
    commands = DeviceCommand.objects.filter(device=OuterRef("pk"), kind=CommandKind.POLICY_SYNC).order_by("-id")
    return Subquery(commands.values(field)[:1])


def _behind() -> Q:
    return Q(synced_version__lt=F("wanted_version"))


def policy_sync_filter(devices: QuerySet, state: str) -> QuerySet:
    """Narrow `devices` to one sync state, as the inventory column shows it:
    in_sync (synced ≥ wanted), failed (behind, and the last policy sync was rejected or got no
    answer: retried within the hour), pending (behind otherwise)."""
    if state == SyncState.IN_SYNC:
        return devices.filter(~_behind())
    last_failed = Q(last_policy_sync_status__in=FAILED_STATUSES)
    devices = devices.filter(_behind()).alias(last_policy_sync_status=_last_policy_sync("status"))
    if state == SyncState.FAILED:
        return devices.filter(last_failed)
    return devices.filter(Q(last_policy_sync_status__isnull=True) | ~last_failed)


@dataclass(frozen=True)
class SyncInfo:
    state: str
    since: datetime | None  # pending: since when the device has been behind
    command: DeviceCommand | None  # the last policy sync command, if any

    @property
    def label(self) -> str:
        return SyncState(self.state).label


def _sync_info(device: Device, command: DeviceCommand | None) -> SyncInfo:
    if device.synced_version >= device.wanted_version:
        return SyncInfo(SyncState.IN_SYNC, None, command)
    since = device.sync_pending_since or device.created_at
    if command is not None and command.status in FAILED_STATUSES:
        return SyncInfo(SyncState.FAILED, since, command)
    return SyncInfo(SyncState.PENDING, since, command)


def policy_sync_load(*, tenant: Tenant, devices: list[Device]) -> list[Device]:
    """Set `device.policy_sync` (a SyncInfo) on each device of a page, in one query."""
    behind = [d.pk for d in devices if d.synced_version < d.wanted_version]
    latest = {}
    if behind:
        ids = (
            DeviceCommand.objects.filter(tenant=tenant, device_id__in=behind, kind=CommandKind.POLICY_SYNC)
            .values("device_id")
            .annotate(latest=Max("id"))
            .values("latest")
        )
        latest = {c.device_id: c for c in DeviceCommand.objects.filter(pk__in=ids)}
    for device in devices:
        device.policy_sync = _sync_info(device, latest.get(device.pk))
    return devices


def device_policy_sync(*, device: Device) -> SyncInfo:
    command = DeviceCommand.objects.filter(device=device, kind=CommandKind.POLICY_SYNC).order_by("-id").first()
    return _sync_info(device, command)


def policy_sync_summary(*, tenant: Tenant) -> dict:
    """Sync compliance of the tenant's enrolled devices (those past activation), for the dashboard."""
    enrolled = Device.objects.filter(tenant=tenant).exclude(state=DeviceState.WAITING_ON_ACTIVATION)
    counts = enrolled.aggregate(total=Count("id"), in_sync=Count("id", filter=~_behind()))
    counts["failed"] = policy_sync_filter(enrolled, SyncState.FAILED).count()
    counts["pending"] = counts["total"] - counts["in_sync"] - counts["failed"]
    total = counts["total"] or 1
    for key in ("in_sync", "pending", "failed"):
        counts[f"{key}_percent"] = round(100 * counts[key] / total, 1)
    counts["not_failed_percent"] = counts["in_sync_percent"] + counts["pending_percent"]  # where the red bar starts
    return counts
