from rest_framework import serializers

from policies.choices import PolicyKind


class PolicySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=PolicyKind.choices)
    name = serializers.CharField()
    description = serializers.CharField()
    is_default = serializers.BooleanField(help_text="The tenant default of its kind")
    settings = serializers.DictField(help_text="The kind's settings, complete (see the policy kinds)")
    version = serializers.IntegerField(help_text="Counts edits of the settings")
    devices = serializers.IntegerField(source="device_count", help_text="Devices holding it directly")
    users = serializers.IntegerField(source="user_count", help_text="Users holding it")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class PolicyCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=PolicyKind.choices)
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    settings = serializers.DictField(required=False, default=dict, help_text="Settings not given take their defaults")


class PolicyUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True)
    settings = serializers.DictField(required=False, help_text="Only the settings to change")


class PolicyAssignmentSerializer(serializers.Serializer):
    """Exactly one of the three."""

    devices = serializers.ListField(
        child=serializers.JSONField(), required=False, max_length=100_000, help_text="Device ids or MAC addresses"
    )
    users = serializers.ListField(
        child=serializers.JSONField(), required=False, max_length=100_000, help_text="E-mail addresses or user ids"
    )
    tenant_default = serializers.BooleanField(required=False, help_text="true: make it the default of its kind")

    def validate(self, data):
        given = [key for key in ("devices", "users") if key in data]
        if data.get("tenant_default"):
            given.append("tenant_default")
        if len(given) != 1:
            raise serializers.ValidationError('Give exactly one of "devices", "users" or "tenant_default": true.')
        return data


class PolicyUnassignmentSerializer(PolicyAssignmentSerializer):
    tenant_default = None


class PolicyAssignmentResultSerializer(serializers.Serializer):
    assigned = serializers.IntegerField(help_text="Devices or users that hold (or no longer hold) the policy")
    devices_raised = serializers.IntegerField(
        source="raised", help_text="Devices whose effective settings changed: they sync within the hour"
    )
