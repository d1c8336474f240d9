"""Django-facing side of the NOTIFY sender: claim DeviceCommands, send them through the SIP
core in one event loop, record each attempt and the final status exactly once."""

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from devices.choices import CommandStatus
from devices.models import Device, DeviceCommand, DeviceCommandAttempt
from gateway.relay import notify_via_edges
from gateway.sip.notify import REJECTED, SENT, NotifyOutcome, NotifyTarget

log = logging.getLogger(__name__)


def _parse_source(address: str) -> tuple[str, int] | None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


class Claimed(NamedTuple):
    """A command this worker now holds, with what sending it needs of its device."""

    pk: int
    device_id: int
    event: str
    attempt_count: int
    contact_uri: str
    transport: str
    source_address: str
    registration_expires_at: datetime | None


class _Result(NamedTuple):
    pk: int
    status: str
    sip_status: int | None
    reason: str
    final: bool  # False: back to queued for another try
    attempted: bool  # a NOTIFY went out (counts as an attempt)


class _Attempt(NamedTuple):
    command_id: int
    contact_uri: str
    transport: str
    outcome: str
    sip_status: int | None
    reason: str
    retransmissions: int


def device_commands_claim(*, command_ids: list[int]) -> tuple[list[Claimed], datetime]:
    """Take the commands no live worker holds: queued ones, and ones whose claim outlived the lease
    (their worker died). Conditional UPDATE under SKIP LOCKED: two workers never take the same one.
    Returns them in id order, and the claim time that marks them as this worker's."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.DEVICE_COMMAND_LEASE_SECONDS)
    claim = _claim_arrays if _arrays() else _claim_orm
    return sorted(claim(command_ids, now=now, stale=stale)), now


def _claim_orm(command_ids: list[int], *, now: datetime, stale: datetime) -> list[Claimed]:
    with transaction.atomic():
        rows = list(
            DeviceCommand.objects.filter(pk__in=command_ids)
            .filter(Q(status=CommandStatus.QUEUED) | Q(status=CommandStatus.SENDING, claimed_at__lt=stale))
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("id")
            .values_list(
                "pk",
                "device_id",
                "event",
                "attempt_count",
                "device__contact_uri",
                "device__transport",
                "device__source_address",
                "device__registration_expires_at",
            )
        )
        DeviceCommand.objects.filter(pk__in=[row[0] for row in rows]).update(
            status=CommandStatus.SENDING, claimed_at=now, updated_at=now
        )
    return [Claimed(*row) for row in rows]


def _claim_arrays(command_ids: list[int], *, now: datetime, stale: datetime) -> list[Claimed]:
    # One statement, tuples back: no model instance per command, no list of ids spelled out twice.
    command, device = DeviceCommand._meta.db_table, Device._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH picked AS (
                SELECT id FROM {command}
                WHERE id = ANY(%s::bigint[]) AND (status = %s OR (status = %s AND claimed_at < %s))
                ORDER BY id FOR UPDATE SKIP LOCKED
            )
            UPDATE {command} AS c SET status = %s, claimed_at = %s, updated_at = %s
            FROM picked, {device} AS d
            WHERE c.id = picked.id AND d.id = c.device_id
            RETURNING c.id, c.device_id, c.event, c.attempt_count, d.contact_uri, d.transport, d.source_address,
                d.registration_expires_at
            """,  # noqa: S608 - table names from the models
            [
                list(command_ids),
                CommandStatus.QUEUED,
                CommandStatus.SENDING,
                stale,
                CommandStatus.SENDING,
                now,
                now,
            ],
        )
        return [Claimed(*row) for row in cursor.fetchall()]


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
    targets, events, devices, results = [], {}, {}, []
    for command in commands:
        online = command.registration_expires_at is not None and command.registration_expires_at > now
        if command.contact_uri and online:
            targets.append(
                NotifyTarget(
                    key=command.pk,
                    contact_uri=command.contact_uri,
                    transport=command.transport or "udp",
                    source=_parse_source(command.source_address) if command.source_address else None,
                )
            )
            events[command.pk] = command.event
            devices[command.pk] = command.device_id
        else:
            results.append(_Result(command.pk, CommandStatus.UNREACHABLE, None, "not registered", True, False))
    outcomes = (
        notify_via_edges(
            targets,
            lambda target: events[target.key],
            devices=devices,
            t1=settings.SIP_T1,
            local_host=settings.SIP_NOTIFY_HOST,
            concurrency=settings.SIP_NOTIFY_CONCURRENCY,
        )
        if targets
        else []
    )
    attempt_counts = {command.pk: command.attempt_count for command in commands}
    attempts = []
    for target, outcome in zip(targets, outcomes, strict=True):
        status, reason = _final(outcome)
        reason = reason[:255]
        attempts.append(
            _Attempt(
                target.key,
                target.contact_uri,
                target.transport,
                status,
                outcome.status,
                reason,
                outcome.retransmissions,
            )
        )
        transient = status == CommandStatus.UNREACHABLE and outcome.status is None and not outcome.permanent
        if transient and attempt_counts[target.key] + 1 < settings.DEVICE_COMMAND_MAX_ATTEMPTS:
            results.append(_Result(target.key, CommandStatus.QUEUED, None, "", False, True))
        else:
            results.append(_Result(target.key, status, outcome.status, reason, True, True))
    record = _record_arrays if _arrays() else _record_orm
    # Finished when the phones have answered (or Timer F ran out), not when the batch started.
    held = record(results, attempts, claim=claim, now=timezone.now())
    retry = [result.pk for result in results if not result.final and result.pk in held]
    log.info("NOTIFY batch: %d commands, %d retry later", len(commands), len(retry))
    return retry


def _record_orm(results: list[_Result], attempts: list[_Attempt], *, claim: datetime, now: datetime) -> set[int]:
    finals = defaultdict(list)
    for result in results:
        if result.final:
            finals[(result.status, result.sip_status, result.reason, result.attempted)].append(result.pk)
    retry = [result.pk for result in results if not result.final]
    with transaction.atomic():
        # Only what we still hold: if our lease ran out and another worker took a command over,
        # its outcome is that worker's to record, so each command ends final exactly once.
        held = set(
            DeviceCommand.objects.select_for_update()
            .filter(pk__in=[result.pk for result in results], status=CommandStatus.SENDING, claimed_at=claim)
            .values_list("pk", flat=True)
        )
        DeviceCommandAttempt.objects.bulk_create(
            [DeviceCommandAttempt(**attempt._asdict()) for attempt in attempts if attempt.command_id in held],
            batch_size=1000,
        )
        mine = DeviceCommand.objects.filter(pk__in=held)
        # One UPDATE per distinct result, not per command.
        for (status, sip_status, reason, attempted), ids in finals.items():
            mine.filter(pk__in=ids).update(
                status=status,
                sip_status=sip_status,
                reason=reason,
                finished_at=now,
                updated_at=now,
                attempt_count=F("attempt_count") + int(attempted),
            )
        mine.filter(pk__in=retry).update(
            status=CommandStatus.QUEUED, claimed_at=None, updated_at=now, attempt_count=F("attempt_count") + 1
        )
    return held


def _record_arrays(results: list[_Result], attempts: list[_Attempt], *, claim: datetime, now: datetime) -> set[int]:
    # One statement for the batch: every result and attempt as arrays (a grouped UPDATE per result
    # and a bulk_create spent more Python per command than the NOTIFY). The UPDATE's own condition
    # keeps only what we still hold: a command another worker took over is that worker's to record,
    # so each command ends final exactly once.
    command, attempt = DeviceCommand._meta.db_table, DeviceCommandAttempt._meta.db_table
    r = list(zip(*results, strict=True))
    a = list(zip(*attempts, strict=True)) if attempts else [[]] * 7
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH result AS (
                SELECT * FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::text[], %s::bool[], %s::bool[])
                    AS r(id, status, sip_status, reason, final, attempted)
            ), recorded AS (
                UPDATE {command} AS c SET
                    status = r.status,
                    sip_status = CASE WHEN r.final THEN r.sip_status ELSE c.sip_status END,
                    reason = CASE WHEN r.final THEN r.reason ELSE c.reason END,
                    finished_at = CASE WHEN r.final THEN %s ELSE c.finished_at END,
                    claimed_at = CASE WHEN r.final THEN c.claimed_at END,
                    updated_at = %s,
                    attempt_count = c.attempt_count + r.attempted::int
                FROM result AS r
                WHERE c.id = r.id AND c.status = %s AND c.claimed_at = %s
                RETURNING c.id
            ), attempts AS (
                INSERT INTO {attempt} (command_id, contact_uri, transport, outcome, sip_status, reason,
                    retransmissions, created_at)
                SELECT a.command_id, a.contact_uri, a.transport, a.outcome, a.sip_status, a.reason,
                    a.retransmissions, %s
                FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::int[], %s::text[], %s::int[])
                    WITH ORDINALITY AS a(command_id, contact_uri, transport, outcome, sip_status, reason,
                        retransmissions, n)
                WHERE a.command_id IN (SELECT id FROM recorded)
                ORDER BY a.n
            )
            SELECT id FROM recorded
            """,  # noqa: S608 - table names from the models
            [*map(list, r), now, now, CommandStatus.SENDING, claim, now, *map(list, a)],
        )
        return {row[0] for row in cursor.fetchall()}


def _arrays() -> bool:
    """PostgreSQL takes a batch as arrays in one statement; other databases (SQLite for `make run`)
    get the same through the ORM."""
    return connection.vendor == "postgresql"


def device_commands_resume(*, older_than_seconds: int | None = None) -> dict[str, list[int]]:
    """Ids of commands stuck queued or held by a dead worker, by kind, for the sweeper to enqueue
    again (each kind in its own lane)."""
    age = older_than_seconds if older_than_seconds is not None else settings.DEVICE_COMMAND_LEASE_SECONDS
    stale = timezone.now() - timedelta(seconds=age)
    stuck: dict[str, list[int]] = {}
    rows = (
        DeviceCommand.objects.filter(
            Q(status=CommandStatus.QUEUED, updated_at__lt=stale) | Q(status=CommandStatus.SENDING, claimed_at__lt=stale)
        )
        .order_by("id")
        .values_list("kind", "pk")[:50_000]
    )
    for kind, pk in rows:
        stuck.setdefault(kind, []).append(pk)
    return stuck
