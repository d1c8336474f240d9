from django.db import models


class DeviceState(models.TextChoices):
    WAITING_ON_ACTIVATION = "waiting_on_activation", "Waiting on activation"
    WAITING_FOR_SIGN_IN = "waiting_for_sign_in", "Waiting for sign in"
    SIGNED_IN = "signed_in", "Signed in"


class ConfigFormat(models.TextChoices):
    YEALINK = "yealink", "Yealink .cfg"
    POLY = "poly", "Poly .cfg"
    CISCO = "cisco", "Cisco MPP .xml"
    AUDIOCODES = "audiocodes", "AudioCodes .cfg"
    SNOM = "snom", "Snom .xml"
    GIGASET = "gigaset", "Gigaset .xml"


class Transport(models.TextChoices):
    UDP = "udp", "UDP"
    TCP = "tcp", "TCP"
    TLS = "tls", "TLS"


class CommandKind(models.TextChoices):
    RESYNC = "resync", "Sync config"
    RESTART = "restart", "Restart"
    POLICY_SYNC = "policy_sync", "Policy sync"


class CommandStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    REJECTED = "rejected", "Rejected"
    UNREACHABLE = "unreachable", "Unreachable"
    CANCELLED = "cancelled", "Cancelled"


PENDING_COMMAND_STATUSES = (CommandStatus.QUEUED, CommandStatus.SENDING)


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    VALIDATING = "validating", "Validating"
    WRITING = "writing", "Writing"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


RUNNING_IMPORT_STATUSES = (ImportStatus.VALIDATING, ImportStatus.WRITING)
FINAL_IMPORT_STATUSES = (ImportStatus.DONE, ImportStatus.FAILED)
