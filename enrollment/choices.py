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


class PairingStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


class PairingOutcome(models.TextChoices):
    """What entering a pairing code found; the label is what the pairing page says."""

    PAIRED = "paired", "Paired"
    MALFORMED = "malformed", "That is not a pairing code: it has 8 letters, like BCDF-GHJK."
    WRONG = "wrong", "That code is not right. Check the code on the phone's screen and try again."
    EXPIRED = "expired", "That code has expired. Press Sign in on the phone again to get a new one."
    USED = "used", "That code was already used. Press Sign in on the phone again to get a new one."
    REVOKED = "revoked", "That code was replaced by a newer one. Enter the code the phone shows now."
    NOT_ENROLLED = "not_enrolled", (
        "This phone is not enrolled yet. Enroll it with its verification code (*55*) before signing in."
    )
    LOCKED = "locked", "Too many wrong codes; try again later"
