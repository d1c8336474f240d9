import logging
import zlib
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, IntegrityError, OperationalError, connection, connections, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from devices import tasks
from devices.choices import (
    PENDING_COMMAND_STATUSES,
    RUNNING_IMPORT_STATUSES,
    CommandKind,
    CommandStatus,
    DeviceState,
    ImportStatus,
)
from devices.imports import (
    INLINE_MAX_ROWS,
    LABELS,
    SHOWN_ERRORS,
    CsvFile,
    DeviceWriter,
    FileRejected,
    RowError,
    Staging,
    check_file,
    is_deadlock,
    references_checked_once,
    stream_file,
)
from devices.models import Device, DeviceCommand, ImportFile, ImportJob, ImportRowError
from devices.selectors import device_model_lookup
from gateway.tasks import device_commands_enqueue
from portal.mac import InvalidMac, normalize_mac
from portal.models import AuditEvent, Tenant
from portal.services import Actor, audit_record, audit_record_many

logger = logging.getLogger(__name__)

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
        raise ValidationError(
            {"mac": [f"{canonical} is {mac_owner_error(tenant=tenant, owner_tenant_id=owner)}"]}
        ) from None
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


OFFBOARD_ACTOR = Actor.system("auto-offboarding")


def devices_offboard_unseen(*, now: datetime | None = None, chunk: int = 1000) -> int:
    """Auto-offboarding (DESIGN.md, as Teams does it): an enrolled phone nobody signed in to, unseen
    AUTO_OFFBOARD_ENROLLED_DAYS, and a signed-in phone unseen AUTO_OFFBOARD_SIGNED_IN_DAYS leave the
    inventory, and need onboarding again. Unseen: no REGISTER, no config fetched and no change of
    state (enrollment, sign-in, sign-out: `updated_at`) in that time. Phones of a tenant whose SIP
    gateway is off, or was turned on again within the time, cannot have been seen and stay; so do
    phones waiting on activation (an admin onboarded them on purpose). Audited per device, deleted
    `chunk` at a time. Returns how many left."""
    now = now or timezone.now()
    days = {
        DeviceState.WAITING_FOR_SIGN_IN: settings.AUTO_OFFBOARD_ENROLLED_DAYS,
        DeviceState.SIGNED_IN: settings.AUTO_OFFBOARD_SIGNED_IN_DAYS,
    }
    unseen = Q()
    for state, state_days in days.items():
        since = now - timedelta(days=state_days)
        gateway_back_on = AuditEvent.objects.filter(
            tenant=OuterRef("tenant"), action="tenant.gateway_enabled", created_at__gt=since
        )
        unseen |= (
            Q(state=state, updated_at__lt=since)
            & (Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=since))
            & (Q(last_provisioned_at__isnull=True) | Q(last_provisioned_at__lt=since))
            & ~Q(Exists(gateway_back_on))
        )
    unseen &= Q(tenant__sip_gateway_enabled=True)
    gone = 0
    while True:
        with transaction.atomic():
            devices = list(
                Device.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(unseen)
                .select_related("tenant")
                .only("id", "mac", "display_name", "state", "tenant")
                .order_by("id")[:chunk]
            )
            if not devices:
                return gone
            groups: dict[tuple[int, str], list[Device]] = {}
            for device in devices:
                groups.setdefault((device.tenant_id, device.state), []).append(device)
            for (_, state), group in groups.items():
                audit_record_many(
                    tenant=group[0].tenant,
                    actor=OFFBOARD_ACTOR,
                    action="device.offboard",
                    objects=group,
                    details={"state": state, "unseen_days": days[state]},
                )
            Device.objects.filter(pk__in=[d.pk for d in devices]).delete()
            gone += len(devices)


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
        for command in DeviceCommand.objects.filter(device__in=devices, kind=kind, status__in=PENDING_COMMAND_STATUSES)
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
    device_commands_enqueue([command.pk for command in new if command.status == CommandStatus.QUEUED], kind=kind)
    return [by_device[device.pk] for device in devices]


# CSV import ------------------------------------------------------------------------------------

# A running job that has not reported progress for this long lost its worker and may be taken over.
IMPORT_STALE_AFTER = timedelta(minutes=5)
# Writes that collide with a concurrent import are re-checked and retried this many times.
IMPORT_WRITE_ATTEMPTS = 3


def devices_import_csv(*, tenant: Tenant, actor: Actor, file_name: str, data: bytes) -> ImportJob:
    """Onboard the devices of a provisioning CSV. The file is checked as a whole first and written as a
    whole or not at all; rows already in the inventory are skipped. Up to 1,000 rows run here and the
    job comes back done or failed; bigger files come back queued for a worker."""
    job = ImportJob(
        tenant=tenant,
        created_by=actor.user,
        created_by_type=actor.type,
        created_by_label=actor.label[:200],
        file_name=(file_name or "upload.csv")[:255],
        file_size=len(data),
    )
    try:
        csv_file = CsvFile(data)
    except FileRejected as rejected:
        _import_fail(job=job, actor=actor, errors=rejected.errors)
        return job
    job.total_rows = csv_file.total_rows
    if csv_file.total_rows <= INLINE_MAX_ROWS:
        job.status, job.started_at, job.attempts = ImportStatus.VALIDATING, timezone.now(), 1
        job.save()
        _import_run(job=job, actor=actor, csv_file=csv_file, live=False)
        return job
    with transaction.atomic():
        job.save()
        # Compressed: a CSV shrinks about tenfold, and so do the copies on its way to the database.
        ImportFile.objects.create(job=job, data=zlib.compress(data, 1))
        tasks.import_job_run.delay_on_commit(job.pk)
    return job


def import_job_run(*, job_id: int) -> ImportJob | None:
    """The worker side of `devices_import_csv`. The job is claimed with a conditional UPDATE, so two
    workers never run it at once; a job whose worker died is taken over once it has been silent for
    IMPORT_STALE_AFTER. A finished job is left alone, so running this twice is harmless."""
    now = timezone.now()
    claimable = Q(status=ImportStatus.QUEUED) | Q(
        status__in=RUNNING_IMPORT_STATUSES, progress_at__lt=now - IMPORT_STALE_AFTER
    )
    claimed = ImportJob.objects.filter(claimable, pk=job_id).update(
        status=ImportStatus.VALIDATING,
        started_at=now,
        progress_at=now,
        attempts=F("attempts") + 1,
        processed_rows=0,
        written_rows=0,
        unchanged_count=0,
    )
    if not claimed:
        return None
    job = ImportJob.objects.select_related("tenant", "created_by").get(pk=job_id)
    actor = Actor(job.created_by_type, job.created_by_label, job.created_by)
    data = ImportFile.objects.filter(job=job).values_list("data", flat=True).first()
    try:
        csv_file = CsvFile(zlib.decompress(data), total_rows=job.total_rows)
    except FileRejected as rejected:
        _import_fail(job=job, actor=actor, errors=rejected.errors)
        return job
    except (TypeError, zlib.error):  # no file, or not one we stored
        _import_fail(
            job=job,
            actor=actor,
            errors=[RowError(None, "", "The uploaded file is no longer available. Upload it again.")],
        )
        return job
    _import_run(job=job, actor=actor, csv_file=csv_file, live=True)
    return job


class _ImportProgress:
    """Progress of a job on its row, for the page that polls it. On PostgreSQL it goes through a
    connection of its own: the job's connection is inside the write transaction, whose changes
    nobody sees before it commits. Inline jobs have nobody watching and report nothing."""

    def __init__(self, job: ImportJob, *, live: bool):
        self.job = job
        self.live = live
        self.connection = None
        if live and connection.vendor == "postgresql":
            self.connection = connections.create_connection(DEFAULT_DB_ALIAS)

    def report(self, **fields) -> None:
        for name, value in fields.items():
            setattr(self.job, name, value)
        if not self.live:
            return
        target = self.connection or connection
        if target.in_atomic_block:
            return  # SQLite has one writer: its progress waits for the commit
        fields["progress_at"] = timezone.now()
        quote = target.ops.quote_name
        assignments = ", ".join(f"{quote(ImportJob._meta.get_field(name).column)} = %s" for name in fields)
        with target.cursor() as cursor:
            cursor.execute(
                f"UPDATE {quote(ImportJob._meta.db_table)} SET {assignments} WHERE id = %s",  # noqa: S608
                [*fields.values(), self.job.pk],
            )

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def _import_run(*, job: ImportJob, actor: Actor, csv_file: CsvFile, live: bool) -> None:
    progress = _ImportProgress(job, live=live)
    staging = Staging(job_id=job.pk)
    try:
        # A worker's job on PostgreSQL first tries writing while it reads (DeviceWriter): a clean file
        # of new devices, the common case, is then done. Small inline imports, SQLite (one writer at a
        # time), a caller inside a transaction (the writer's connection would not see the job) and
        # every file that is not that simple take the checked path: check, then write.
        streams = live and connection.vendor == "postgresql" and not connection.in_atomic_block
        if streams and _import_streamed(job=job, actor=actor, csv_file=csv_file, progress=progress):
            return
        _import_checked(job=job, actor=actor, csv_file=csv_file, staging=staging, progress=progress, live=live)
    except Exception:
        logger.exception("import %s failed", job.pk)
        _import_fail(
            job=job,
            actor=actor,
            errors=[
                RowError(None, "", ("The import stopped unexpectedly and nothing was written. Upload the file again."))
            ],
        )
        if not live:
            raise
    finally:
        progress.close()
        staging.drop()


def _import_streamed(*, job: ImportJob, actor: Actor, csv_file: CsvFile, progress: _ImportProgress) -> bool:
    """Write while reading; True if the import is done. False leaves nothing written."""
    writer = DeviceWriter(job_id=job.pk, tenant_id=job.tenant_id, batch_rows=settings.IMPORT_CHUNK_ROWS)
    try:
        sent = stream_file(
            csv_file,
            writer,
            chunk_rows=settings.IMPORT_CHUNK_ROWS,
            on_progress=lambda processed: progress.report(processed_rows=processed, written_rows=writer.written),
        )
        done = False
        if sent is not None:  # no row had an error of its own
            progress.report(status=ImportStatus.WRITING, written_rows=writer.written)
            done = writer.commit(
                expected=sent,
                finish=lambda written: _import_done(job=job, actor=actor, created=written, unchanged=0),
                on_wait=lambda written: progress.report(written_rows=written),
            )
    finally:
        writer.abandon()  # a no-op once committed
    if not done:
        logger.info("import %s has errors or rows already onboarded: checking the whole file", job.pk)
        progress.report(status=ImportStatus.VALIDATING, processed_rows=0, written_rows=0)
    return done


def _import_checked(
    *, job: ImportJob, actor: Actor, csv_file: CsvFile, staging: Staging, progress: _ImportProgress, live: bool
) -> None:
    """Check every row and the file as a whole, then write it in one transaction or report every error."""
    staging.create(big=live)
    check_file(
        csv_file,
        staging,
        flush_every=settings.IMPORT_CHUNK_ROWS,
        on_progress=lambda processed: progress.report(processed_rows=processed),
    )
    staging.index()
    mac = {"column": LABELS["mac"], "position": csv_file.columns.index("mac")}
    staging.find_duplicates(**mac)
    for attempt in range(1, IMPORT_WRITE_ATTEMPTS + 1):
        staging.find_other_owners(tenant_id=job.tenant_id, **mac)
        if error_count := staging.error_count():
            _import_fail(
                job=job,
                actor=actor,
                errors=staging.first_errors(SHOWN_ERRORS),
                staging=staging,
                error_count=error_count,
            )
            return
        try:
            with transaction.atomic():
                _import_write(job=job, actor=actor, staging=staging, progress=progress)
            return
        except (IntegrityError, OperationalError) as exc:
            # Another import wrote some of these MACs after our check (or the two deadlocked):
            # nothing of ours was kept; check again against what it wrote.
            if isinstance(exc, OperationalError) and not is_deadlock(exc):
                raise
            logger.info("import %s collided with a concurrent import (attempt %s)", job.pk, attempt)
    _import_fail(
        job=job,
        actor=actor,
        errors=[
            RowError(
                None,
                "",
                (
                    "Other imports kept adding the same devices while this one was writing, "
                    "so nothing was written. Upload the file again: devices already onboarded are skipped."
                ),
            )
        ],
    )


def _import_write(*, job: ImportJob, actor: Actor, staging: Staging, progress: _ImportProgress) -> None:
    unchanged = staging.mark_existing()
    progress.report(status=ImportStatus.WRITING, unchanged_count=unchanged, written_rows=0)
    written = 0
    with connection.cursor() as cursor, references_checked_once(cursor, source=staging.rows, tenant_id=job.tenant_id):
        for after, upto in staging.chunks(settings.IMPORT_CHUNK_ROWS):
            written += staging.write(tenant_id=job.tenant_id, after=after, upto=upto)
            progress.report(written_rows=written)
    _import_done(job=job, actor=actor, created=written, unchanged=unchanged)


def _import_done(*, job: ImportJob, actor: Actor, created: int, unchanged: int) -> None:
    """Record the import, in the transaction that wrote its devices: one audit event for the file,
    not one per device (a million rows in the log would double the import's writes)."""
    job.status, job.created_count, job.finished_at = ImportStatus.DONE, created, timezone.now()
    job.written_rows, job.unchanged_count = created, unchanged
    job.save(update_fields=["status", "created_count", "finished_at", "written_rows", "unchanged_count"])
    _import_close(job=job, actor=actor, created=created, unchanged=unchanged)


def _import_fail(
    *, job: ImportJob, actor: Actor, errors, staging: Staging | None = None, error_count: int | None = None
) -> None:
    """Record why nothing was written: the first errors on the job, every error for the download."""
    shown = [e if isinstance(e, dict) else e.as_dict() for e in errors]
    job.status, job.finished_at = ImportStatus.FAILED, timezone.now()
    job.errors, job.error_count = shown, error_count if error_count is not None else len(shown)
    job.created_count = job.written_rows = 0
    with transaction.atomic():
        job.save()
        ImportRowError.objects.filter(job=job).delete()
        if staging is not None:
            staging.save_errors(job_id=job.pk)
        else:
            ImportRowError.objects.bulk_create(ImportRowError(job=job, **e) for e in shown)
        _import_close(job=job, actor=actor, errors=job.error_count)


def _import_close(*, job: ImportJob, actor: Actor, **outcome) -> None:
    """The end of every import, done or failed: its upload is no longer kept, and it is audited once."""
    ImportFile.objects.filter(job=job).delete()
    audit_record(
        tenant=job.tenant,
        actor=actor,
        action="devices.import",
        obj=job,
        details={"file_name": job.file_name, "rows": job.total_rows, **outcome},
    )
