from django.db import models
from django.db.models import Q
from django.utils import timezone

from devices.models import Device
from enrollment.keys import code_decrypt
from portal.models import Tenant


class VerificationCode(models.Model):
    """A device's one-time enrollment code. One row per device at most (regenerating replaces it),
    live while `ciphertext` is set and `expires_at` is ahead.

    The Fernet `ciphertext` is wiped (NULL) when the code is used, revoked or swept after expiry.
    The keyed `digest` stays: it is meaningless without the key and grants nothing once the code is
    dead, and it lets the check tell the phone "used" or "expired" rather than "wrong"."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    device = models.OneToOneField(Device, on_delete=models.CASCADE, related_name="verification_code")
    ciphertext = models.TextField(null=True, blank=True)  # noqa: DJ001 - NULL is "wiped", which "" is not
    digest = models.BinaryField(max_length=32)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # No two live codes of one organization are the same, so a technician reading codes
            # off a list cannot confuse two phones. Per tenant: the code is only ever checked
            # together with the phone's MAC, and one tenant's volume must not crowd another's.
            models.UniqueConstraint(
                fields=["tenant", "digest"],
                condition=Q(ciphertext__isnull=False),
                name="verificationcode_live_digest_uniq",
            ),
            models.CheckConstraint(
                condition=Q(used_at__isnull=True) | Q(ciphertext__isnull=True),
                name="verificationcode_used_is_wiped",
            ),
        ]
        indexes = [
            # The expiry sweep reads only live rows.
            models.Index(
                fields=["expires_at"], condition=Q(ciphertext__isnull=False), name="verificationcode_live_exp"
            ),
        ]

    def __str__(self) -> str:
        return f"verification code of {self.device_id}"

    @property
    def is_live(self) -> bool:
        return self.ciphertext is not None and self.expires_at > timezone.now()

    @property
    def code(self) -> str | None:
        """The six digits while the code is live, else None."""
        return code_decrypt(self.ciphertext) if self.is_live else None
