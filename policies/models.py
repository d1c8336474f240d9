from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from policies.choices import PolicyKind
from portal.models import Tenant


class Policy(models.Model):
    """Settings of one kind a tenant pushes to its phones. `version` counts edits of the settings."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="policies")
    kind = models.CharField(max_length=24, choices=PolicyKind.choices)
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=255, blank=True)
    settings = models.JSONField(default=dict)
    # The tenant default of its kind: what devices and users with no assignment of the kind get.
    is_default = models.BooleanField(default=False)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint("tenant", "kind", Lower("name"), name="policy_tenant_kind_name_uniq"),
            models.UniqueConstraint(
                fields=["tenant", "kind"], condition=models.Q(is_default=True), name="policy_one_default_per_kind"
            ),
        ]
        ordering = ["kind", "-is_default", "name"]

    def __str__(self) -> str:
        return self.name


class PolicyAssignment(models.Model):
    """A policy given to one device or one user (never both). The tenant default is `Policy.is_default`.
    `kind` repeats the policy's kind so that a device or user holds at most one policy of each kind."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="assignments")
    kind = models.CharField(max_length=24, choices=PolicyKind.choices)
    device = models.ForeignKey(
        "devices.Device", null=True, blank=True, on_delete=models.CASCADE, related_name="policy_assignments"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="policy_assignments"
    )
    assigned_by_label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(device__isnull=False, user__isnull=True)
                | models.Q(device__isnull=True, user__isnull=False),
                name="policyassignment_device_or_user",
            ),
            # Plain (not partial) unique indexes, so that an assignment can be an upsert on them.
            models.UniqueConstraint(fields=["device", "kind"], name="policyassignment_device_kind_uniq"),
            models.UniqueConstraint(fields=["user", "kind"], name="policyassignment_user_kind_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.policy} → {'device ' + str(self.device_id) if self.device_id else 'user ' + str(self.user_id)}"
