"""Django-facing side of the NOTIFY sender: claim DeviceCommands, send them through the SIP
core in one event loop, record each attempt and the final status exactly once."""

import logging
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from devices.choices import CommandStatus
from devices.models import DeviceCommand, DeviceCommandAttempt
from gateway.relay import notify_via_edges
from gateway.sip.notify import REJECTED, SENT, NotifyOutcome, NotifyTarget

log = logging.getLogger(__name__)


def _parse_source(address: str) -> tuple[str, int] | None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def device_commands_claim(*, command_ids: list[int]) -> tuple[list[DeviceCommand], object]:
    """Take the commands no live worker holds: queued ones, and ones whose claim outlived the lease
    (their worker died). Conditional UPDATE under SKIP LOCKED: two workers never take the same one."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.DEVICE_COMMAND_LEASE_SECONDS)
    with transaction.atomic():
        claimed = list(
            DeviceCommand.objects.filter(pk__in=command_ids)
            .filter(Q(status=CommandStatus.QUEUED) | Q(status=CommandStatus.SENDING, claimed_at__lt=stale))
            .select_related("device")
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("id")
        )
        DeviceCommand.objects.filter(pk__in=[c.pk for c in claimed]).update(
            status=CommandStatus.SENDING, claimed_at=now, updated_at=now
        )
    return claimed, now


def _final(outcome: NotifyOutcome) -> tuple[str, str]:
    if outcome.outcome == SENT:
        return CommandStatus.SENT, outcome.reason
    if outcome.outcome == REJECTED:
        if outcome.status in (401, 407):
            return CommandStatus.REJECTED, "authentication required"
        return CommandStatus.REJECTED, outcome.reason
    if outcome.status == 408:
        return CommandStatus.UNREACHABLE, "no response (timed out)"
    return CommandStatus.UNREACHABLE, outcome.reason


def device_commands_send(*, command_ids: list[int]) -> list[int]:
    """Send the claimable commands among `command_ids`; return the ids worth another try later
    (transport errors with attempts left). Everything else ends final here."""
    commands, claim = device_commands_claim(command_ids=command_ids)
    if not commands:
        return []
    now = timezone.now()
    targets, not_registered = [], []
    for command in commands:
        device = command.device
        if device.contact_uri and device.online:
            targets.append(
                NotifyTarget(
                    key=command.pk,
                    contact_uri=device.contact_uri,
                    transport=device.transport or "udp",
                    source=_parse_source(device.source_address) if device.source_address else None,
                )
            )
        else:
            not_registered.append(command)
    events = {command.pk: command.event for command in commands}
    outcomes = (
        notify_via_edges(
            targets,
            lambda target: events[target.key],
            devices={command.pk: command.device_id for command in commands},
            t1=settings.SIP_T1,
            local_host=settings.SIP_NOTIFY_HOST,
            concurrency=settings.SIP_NOTIFY_CONCURRENCY,
        )
        if targets
        else []
    )
    by_id = {command.pk: command for command in commands}
    attempts, finals, retry = [], defaultdict(list), []
    for target, outcome in zip(targets, outcomes, strict=True):
        command = by_id[outcome.key]
        status, reason = _final(outcome)
        attempts.append(
            DeviceCommandAttempt(
                command=command,
                contact_uri=target.contact_uri,
                transport=target.transport,
                outcome=status,
                sip_status=outcome.status,
                reason=reason[:255],
                retransmissions=outcome.retransmissions,
            )
        )
        transient = status == CommandStatus.UNREACHABLE and outcome.status is None and not outcome.permanent
        if transient and command.attempt_count + 1 < settings.DEVICE_COMMAND_MAX_ATTEMPTS:
            retry.append(command.pk)
        else:
            finals[(status, outcome.status, reason[:255], True)].append(command.pk)
    for command in not_registered:
        finals[(CommandStatus.UNREACHABLE, None, "not registered", False)].append(command.pk)
    with transaction.atomic():
        # Only what we still hold: if our lease ran out and another worker took a command over,
        # its outcome is that worker's to record, so each command ends final exactly once.
        held = set(
            DeviceCommand.objects.select_for_update()
            .filter(pk__in=list(by_id), status=CommandStatus.SENDING, claimed_at=claim)
            .values_list("pk", flat=True)
        )
        DeviceCommandAttempt.objects.bulk_create([a for a in attempts if a.command_id in held], batch_size=1000)
        mine = DeviceCommand.objects.filter(pk__in=held)
        # One UPDATE per distinct result, not per command.
        for (status, sip_status, reason, attempted), ids in finals.items():
            mine.filter(pk__in=ids).update(
                status=status, sip_status=sip_status, reason=reason, finished_at=now, updated_at=now,
                attempt_count=F("attempt_count") + int(attempted),
            )
        mine.filter(pk__in=retry).update(
            status=CommandStatus.QUEUED, claimed_at=None, updated_at=now, attempt_count=F("attempt_count") + 1
        )
    retry = [pk for pk in retry if pk in held]
    log.info("NOTIFY batch: %d commands, %d retry later", len(commands), len(retry))
    return retry


def device_commands_resume(*, older_than_seconds: int | None = None) -> list[int]:
    """Ids of commands stuck queued or held by a dead worker, for the sweeper to enqueue again."""
    age = older_than_seconds if older_than_seconds is not None else settings.DEVICE_COMMAND_LEASE_SECONDS
    stale = timezone.now() - timedelta(seconds=age)
    return list(
        DeviceCommand.objects.filter(
            Q(status=CommandStatus.QUEUED, updated_at__lt=stale) | Q(status=CommandStatus.SENDING, claimed_at__lt=stale)
        )
        .order_by("id")
        .values_list("pk", flat=True)[:50_000]
    )
