from django.db import models


class CheckOutcome(models.TextChoices):
    """What checking a verification code found; the label is the text for the phone's Warning header."""

    ENROLLED = "enrolled", "Enrolled"
    WRONG = "wrong", "Wrong verification code"
    NO_CODE = "no_code", "No verification code was generated for this device"
    EXPIRED = "expired", "Verification code expired; ask for a new one"
    USED = "used", "Verification code already used"
    LOCKED = "locked", "Too many wrong codes; try again later"
    NOT_ONBOARDED = "not_onboarded", "Device is not onboarded"
