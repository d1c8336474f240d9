from django.conf import settings
from django.db import models
from django.db.models.functions import Concat, Replace, Upper
from django.utils import timezone

from devices.choices import (
    FINAL_IMPORT_STATUSES,
    PENDING_COMMAND_STATUSES,
    CommandKind,
    CommandStatus,
    ConfigFormat,
    DeviceState,
    ImportStatus,
    Transport,
)
from portal.choices import ActorType
from portal.mac import mac_digits
from portal.models import Tenant


class DeviceModel(models.Model):
    """Catalog of supported phones; seeded by a data migration, edited as data."""

    vendor = models.CharField(max_length=64)
    model = models.CharField(max_length=64)
    min_firmware = models.CharField(max_length=64, blank=True)
    resync_event = models.CharField(max_length=64)
    reboot_event = models.CharField(max_length=64)
    config_format = models.CharField(max_length=16, choices=ConfigFormat.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["vendor", "model"], name="devicemodel_vendor_model_uniq")]
        ordering = ["vendor", "model"]

    def __str__(self) -> str:
        return f"{self.vendor} {self.model}"


class Device(models.Model):
    # The composite indexes below all lead with tenant: a single-column one would only slow writes.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, db_index=False, related_name="devices")
    # Canonical XX-XX-XX-XX-XX-XX; unique across all tenants (one phone, one owner): see Meta.
    mac = models.CharField(max_length=17)
    # What the search box looks in, upper case, one line per field, the MAC's hex digits last (the
    # technician's look-up by a MAC's last digits is an "ends with"): one trigram index serves it
    # (devices migration 0010), where an index per field made every insert update four.
    search_text = models.GeneratedField(
        expression=Upper(
            Concat(
                "display_name", models.Value("\n"), "location", models.Value("\n"), "phone_number",
                models.Value("\n"), Replace(models.F("mac"), models.Value("-"), models.Value("")),
                output_field=models.TextField(),
            )
        ),
        output_field=models.TextField(),
        db_persist=True,
    )
    display_name = models.CharField(max_length=100, blank=True)
    location = models.CharField(max_length=100, blank=True)
    # No index of its own: the catalog is never pruned of models in use, and the inventory filters
    # by model within a tenant through the tenant's indexes.
    model = models.ForeignKey(
        DeviceModel, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    firmware = models.CharField(max_length=64, blank=True)
    state = models.CharField(
        max_length=24, choices=DeviceState.choices, default=DeviceState.WAITING_ON_ACTIVATION
    )
    signed_in_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="devices",
        db_index=False,  # partial index in Meta: most devices have nobody signed in
    )
    phone_number = models.CharField(max_length=32, blank=True)

    # The live SIP registration, written by the SIP edge (any instance: it lives here, not in memory).
    contact_uri = models.CharField(max_length=255, blank=True)
    transport = models.CharField(max_length=4, choices=Transport.choices, blank=True)
    source_address = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    registration_expires_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    last_provisioned_at = models.DateTimeField(null=True, blank=True)
    last_provisioned_ip = models.GenericIPAddressField(null=True, blank=True)
    last_provisioned_user_agent = models.CharField(max_length=255, blank=True)

    # Raised by every change to the device's effective settings; synced when it fetches its config.
    wanted_version = models.PositiveIntegerField(default=1)
    synced_version = models.PositiveIntegerField(default=0)
    # When wanted_version last moved ahead of synced_version: what "Pending since" shows.
    sync_pending_since = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Every index here is written by every onboarded device: a 1,000,000-row CSV import pays
        # about a second for each (bench/import_csv.py), so each one must serve a real query.
        constraints = [
            # A constraint rather than unique=True, which adds a second (LIKE prefix) index nobody uses.
            models.UniqueConstraint(fields=["mac"], name="device_mac_unique"),
        ]
        indexes = [
            # Default inventory order and the keyset pages behind it.
            models.Index(fields=["tenant", "-created_at", "-id"], name="device_tenant_created"),
            # Pages filtered by state; with registration_expires_at carried along it also counts the
            # summary cards (per state, online) from the index alone.
            models.Index(
                fields=["tenant", "state", "-created_at", "-id"],
                include=["registration_expires_at"],
                name="device_tenant_state_listed",
            ),
            models.Index(fields=["tenant", "display_name", "id"], name="device_tenant_name"),
            models.Index(fields=["tenant", "mac"], name="device_tenant_mac"),
            models.Index(fields=["tenant", "location", "id"], name="device_tenant_location"),
            models.Index(fields=["tenant", "last_seen_at", "id"], name="device_tenant_last_seen"),
            # A user's phones (policy resolution, sign-out); NULL for most devices, so left out.
            models.Index(
                fields=["signed_in_user"],
                condition=models.Q(signed_in_user__isnull=False),
                name="device_signed_in_user",
            ),
            # PostgreSQL only, in migration 0006: trigram indexes for the search box and
            # `last_seen_at NULLS FIRST` for newest-seen-first with NULLs last.
        ]

    def __str__(self) -> str:
        return self.display_name or self.mac

    @property
    def sip_user(self) -> str:
        return mac_digits(self.mac)

    @property
    def online(self) -> bool:
        return self.registration_expires_at is not None and self.registration_expires_at > timezone.now()

    @property
    def vendor(self) -> str:
        return self.model.vendor if self.model_id else ""


class DeviceCommand(models.Model):
    """A NOTIFY we owe a phone (saved first, then sent by a worker: Saleor's webhook delivery).
    `sent` means the phone answered 2xx, not that it acted on it."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="commands")
    kind = models.CharField(max_length=16, choices=CommandKind.choices)
    status = models.CharField(max_length=16, choices=CommandStatus.choices, default=CommandStatus.QUEUED)
    event = models.CharField(max_length=64, help_text="the Event: header sent")
    sip_status = models.PositiveSmallIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=255, blank=True)
    attempt_count = models.PositiveSmallIntegerField(default=0)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=200)
    # Set when a worker claims the command; a claim older than the lease may be taken over.
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One pending command of a kind per device: asking again returns the one in flight.
            models.UniqueConstraint(
                fields=["device", "kind"],
                condition=models.Q(status__in=PENDING_COMMAND_STATUSES),
                name="devicecommand_one_pending_per_kind",
            )
        ]
        indexes = [
            models.Index(fields=["device", "-id"], name="devicecommand_device_latest"),
            models.Index(
                fields=["status", "claimed_at"],
                condition=models.Q(status__in=PENDING_COMMAND_STATUSES),
                name="devicecommand_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.device_id} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status not in PENDING_COMMAND_STATUSES


class DeviceCommandAttempt(models.Model):
    command = models.ForeignKey(DeviceCommand, on_delete=models.CASCADE, related_name="attempts")
    contact_uri = models.CharField(max_length=255)
    transport = models.CharField(max_length=4)
    outcome = models.CharField(max_length=16, choices=CommandStatus.choices)
    sip_status = models.PositiveSmallIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=255, blank=True)
    retransmissions = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.outcome} {self.sip_status or ''} to {self.contact_uri}"


class ImportJob(models.Model):
    """One CSV upload: validated as a whole, then written as a whole, or not at all.
    Small files run in the request; big ones on a worker, which reports progress on this row."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_type = models.CharField(max_length=8, choices=ActorType.choices, default=ActorType.USER)
    created_by_label = models.CharField(max_length=200)
    file_name = models.CharField(max_length=255)
    file_size = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=ImportStatus.choices, default=ImportStatus.QUEUED)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0, help_text="rows validated")
    written_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0, help_text="rows already in the inventory")
    error_count = models.PositiveIntegerField(default=0)
    # The first errors as {"row", "column", "message"}; the full list is in ImportRowError.
    errors = models.JSONField(default=list, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Bumped with every progress report: a running job that stops reporting is taken over.
    progress_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "-created_at", "-id"], name="importjob_tenant_created")]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_IMPORT_STATUSES

    @property
    def rows_to_write(self) -> int:
        return max(self.total_rows - self.unchanged_count, 0)


class ImportFile(models.Model):
    """The uploaded bytes, kept in the database (every web and worker process can read them) until
    the job has run."""

    job = models.OneToOneField(ImportJob, on_delete=models.CASCADE, primary_key=True, related_name="file")
    data = models.BinaryField(help_text="zlib-compressed")

    def __str__(self) -> str:
        return f"file of import {self.job_id}"


class ImportRowError(models.Model):
    """Every error of a failed import, in row order, for the CSV download."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors", db_index=False)
    row = models.PositiveIntegerField(null=True, blank=True)
    column = models.CharField(max_length=64, blank=True)
    message = models.TextField()

    class Meta:
        indexes = [models.Index(fields=["job", "id"], name="importrowerror_job")]

    def __str__(self) -> str:
        return f"row {self.row}, {self.column}: {self.message}"
