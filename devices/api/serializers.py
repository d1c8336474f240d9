from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from devices.choices import DeviceState
from devices.models import Device
from enrollment.selectors import live_code
from portal.access import STAFF
from portal.api.permissions import request_membership


class PolicyVersionSerializer(serializers.Serializer):
    wanted_version = serializers.IntegerField()
    synced_version = serializers.IntegerField()


class LastProvisionedSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    ip = serializers.IPAddressField(allow_null=True)
    user_agent = serializers.CharField()


class VerificationCodeSerializer(serializers.Serializer):
    code = serializers.CharField()
    expires_at = serializers.DateTimeField()


class DeviceSerializer(serializers.ModelSerializer):
    """The device as DESIGN.md's REST API shows it (output only; writes go through services)."""

    vendor = serializers.SerializerMethodField()
    model = serializers.SerializerMethodField()
    state = serializers.ChoiceField(choices=DeviceState.choices)
    online = serializers.BooleanField()
    user = serializers.SerializerMethodField()
    last_seen = serializers.DateTimeField(source="last_seen_at", allow_null=True)
    last_provisioned = serializers.SerializerMethodField()
    policy = serializers.SerializerMethodField()
    verification_code = serializers.SerializerMethodField()

    class Meta:
        model = Device
        fields = [
            "id",
            "mac",
            "display_name",
            "location",
            "vendor",
            "model",
            "firmware",
            "state",
            "online",
            "user",
            "phone_number",
            "last_seen",
            "last_provisioned",
            "policy",
            "verification_code",
            "created_at",
            "updated_at",
        ]

    def get_vendor(self, device) -> str | None:
        return device.model.vendor if device.model_id else None

    def get_model(self, device) -> str | None:
        return device.model.model if device.model_id else None

    def get_user(self, device) -> str | None:
        """The signed-in user's e-mail address."""
        return device.signed_in_user.username if device.signed_in_user_id else None

    @extend_schema_field(LastProvisionedSerializer(allow_null=True))
    def get_last_provisioned(self, device) -> dict | None:
        if device.last_provisioned_at is None:
            return None
        return {
            "at": device.last_provisioned_at,
            "ip": device.last_provisioned_ip,
            "user_agent": device.last_provisioned_user_agent,
        }

    @extend_schema_field(PolicyVersionSerializer)
    def get_policy(self, device) -> dict:
        return {"wanted_version": device.wanted_version, "synced_version": device.synced_version}

    @extend_schema_field(VerificationCodeSerializer(allow_null=True))
    def get_verification_code(self, device) -> dict | None:
        """The live code, to admins and technicians only (lists load codes with verification_codes_load)."""
        request = self.context.get("request")
        membership = request_membership(request) if request is not None else None
        if membership is None or membership.role not in STAFF:
            return None
        code = live_code(device)
        return {"code": code.code, "expires_at": code.expires_at} if code else None


class DeviceCreateSerializer(serializers.Serializer):
    mac = serializers.CharField(max_length=32)
    location = serializers.CharField(max_length=100, allow_blank=True)
    display_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    model = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        default=None,
        help_text="`T54W`, `Yealink T54W` or a catalog id",
    )


class DeviceUpdateSerializer(serializers.Serializer):
    display_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    location = serializers.CharField(max_length=100, required=False, allow_blank=True)
    model = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    phone_number = serializers.CharField(max_length=32, required=False, allow_blank=True)


class DeviceCommandAttemptSerializer(serializers.Serializer):
    at = serializers.DateTimeField(source="created_at")
    contact = serializers.CharField(source="contact_uri")
    transport = serializers.CharField()
    outcome = serializers.CharField()
    sip_status = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField()
    retransmissions = serializers.IntegerField()


class DeviceCommandSerializer(serializers.Serializer):
    """`sent` means the phone answered 2xx to the NOTIFY, not that it has restarted or resynced."""

    id = serializers.IntegerField()
    device = serializers.IntegerField(source="device_id")
    kind = serializers.CharField()
    status = serializers.CharField()
    final = serializers.BooleanField(source="is_final")
    event = serializers.CharField()
    sip_status = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField()
    attempts = DeviceCommandAttemptSerializer(many=True, source="attempts.all")
    requested_by = serializers.CharField(source="requested_by_label")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class DeviceIdsSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(), allow_empty=False, max_length=100_000)
