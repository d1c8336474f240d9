from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from devices.models import Device
from enrollment.choices import PairingStatus
from enrollment.keys import code_decrypt
from portal.models import Tenant


class VerificationCode(models.Model):
    """A device's one-time enrollment code. One row per device at most (regenerating replaces it),
    live while `ciphertext` is set and `expires_at` is ahead.

    The Fernet `ciphertext` is wiped (NULL) when the code is used, revoked or swept after expiry.
    The keyed `digest` stays: it is meaningless without the key and grants nothing once the code is
    dead, and it lets the check tell the phone "used" or "expired" rather than "wrong"."""

    # The device's tenant, copied here for the per-tenant unique index, which also serves lookups by
    # tenant. No FK constraint or index of its own: the device's FK already ties the row to a
    # tenant's device (and cascades), and each extra per-row check or index costs a bulk insert of
    # 100,000 codes a sizeable share of its time.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
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
        """The six digits while the code is live and readable with the current key, else None."""
        return code_decrypt(self.ciphertext) if self.is_live else None


class PairingRequest(models.Model):
    """A phone asking to be signed in (RFC 8628's device authorization grant, in spirit): it shows a
    user code, and a user of the tenant enters it on the pairing page. Only the keyed `digest` of
    the code is kept: it is shown once, when the request is made, and afterwards only matched."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="pairing_requests")
    digest = models.BinaryField(max_length=32)
    status = models.CharField(max_length=8, choices=PairingStatus.choices, default=PairingStatus.PENDING)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=200)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_from = models.CharField(max_length=64, blank=True, help_text="where the code was entered (IP address)")

    class Meta:
        constraints = [
            # One live request per device: a new one replaces (revokes) the previous one.
            models.UniqueConstraint(
                fields=["device"], condition=Q(status=PairingStatus.PENDING), name="pairingrequest_one_pending"
            ),
            # A code entered on the page names exactly one pending request of the tenant.
            models.UniqueConstraint(
                fields=["tenant", "digest"],
                condition=Q(status=PairingStatus.PENDING),
                name="pairingrequest_pending_digest_uniq",
            ),
            models.CheckConstraint(
                condition=Q(status=PairingStatus.APPROVED, approved_at__isnull=False)
                | (~Q(status=PairingStatus.APPROVED) & Q(approved_at__isnull=True)),
                name="pairingrequest_approved_has_time",
            ),
        ]
        indexes = [
            # Entered codes are matched by digest among all of the tenant's requests, so that a used
            # or expired code is told apart from a wrong one.
            models.Index(fields=["tenant", "digest"], name="pairingrequest_tenant_digest"),
            models.Index(fields=["device", "-created_at"], name="pairingrequest_device_latest"),
            # The expiry sweep reads only the pending ones, never the history.
            models.Index(
                fields=["expires_at"], condition=Q(status=PairingStatus.PENDING), name="pairingrequest_pending_expiry"
            ),
        ]

    def __str__(self) -> str:
        return f"pairing request of {self.device_id} ({self.status})"

    @property
    def is_live(self) -> bool:
        return self.status == PairingStatus.PENDING and self.expires_at > timezone.now()
