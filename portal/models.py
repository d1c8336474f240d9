import hashlib
import secrets

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models

from portal.choices import ActorType, Region, Role


def new_provisioning_key() -> str:
    return secrets.token_urlsafe(24)


class Tenant(models.Model):
    name = models.CharField(max_length=200)
    region = models.CharField(max_length=8, choices=Region.choices, default=Region.NOAM)
    sip_gateway_enabled = models.BooleanField(default=True)
    # Secret path segment of the tenant's provisioning URL: whoever knows it can fetch configs.
    provisioning_key = models.CharField(max_length=64, unique=True, default=new_provisioning_key)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class EmailUserManager(UserManager):
    def get_by_natural_key(self, username):
        """Sign-in by e-mail address in any case: addresses are stored lower case (normalize_username).
        As typed first: an account whose address clashed when portal 0003 lowered the others'
        kept its spelling."""
        address = (username or "").strip()
        try:
            return self.get(**{self.model.USERNAME_FIELD: address})
        except self.model.DoesNotExist:
            return self.get(**{self.model.USERNAME_FIELD: address.lower()})


class User(AbstractUser):
    """Signs in with the e-mail address as username."""

    objects = EmailUserManager()

    @classmethod
    def normalize_username(cls, username):
        """One account per address however it is typed (mail providers ignore case): every way of
        creating a user (user_create, createsuperuser, forms' clean) stores it lower case."""
        return super().normalize_username(username).strip().lower()

    phone_number = models.CharField(max_length=32, blank=True)

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.email or self.username


class Membership(models.Model):
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="membership")
    # The composite indexes below all lead with tenant: a single-column one would only slow writes.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, db_index=False, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)

    class Meta:
        indexes = [models.Index(fields=["tenant", "role"])]

    def __str__(self) -> str:
        return f"{self.user} ({self.role} of {self.tenant})"


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """Only the SHA-256 of the key is stored; the key is shown once, when it is created."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class AuditEvent(models.Model):
    # The composite indexes below all lead with tenant: a single-column one would only slow writes.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, db_index=False, related_name="audit_events")
    actor_type = models.CharField(max_length=8, choices=ActorType.choices)
    actor_user = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=32, blank=True)
    object_id = models.BigIntegerField(null=True, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"]),
            models.Index(fields=["tenant", "object_type", "object_id", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.object_repr}"
