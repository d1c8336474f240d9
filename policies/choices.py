from django.db import models


class PolicyKind(models.TextChoices):
    CALLING = "calling", "Calling"
    IP_PHONE = "ip_phone", "IP phone"
    EMERGENCY_CALLING = "emergency_calling", "Emergency calling"


class SignInMode(models.TextChoices):
    USER = "user", "User sign-in"
    COMMON_AREA = "common_area", "Common area phone"


class Language(models.TextChoices):
    # The UI languages the SIP Gateway offers (facts.md).
    EN = "en", "English"
    ES = "es", "Spanish"
    JA = "ja", "Japanese"
    DE = "de", "German"
    FR = "fr", "French"
    PT = "pt", "Portuguese"


class Source(models.TextChoices):
    """Where a device's effective policy of a kind comes from: device > user > tenant default."""

    DEVICE = "device", "Assigned to this device"
    USER = "user", "Assigned to the signed-in user"
    TENANT_DEFAULT = "tenant_default", "Organization default"


class SyncState(models.TextChoices):
    IN_SYNC = "in_sync", "In sync"
    PENDING = "pending", "Pending"
    FAILED = "failed", "Failed"
