from rest_framework import serializers

from devices.choices import DeviceState

MAX_IDS = 100_000


class VerificationCodesRequestSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, allow_empty=False, max_length=MAX_IDS,
        help_text="Device ids; ids of other organizations and of enrolled devices are skipped.",
    )
    state = serializers.ChoiceField(
        choices=[DeviceState.WAITING_ON_ACTIVATION], required=False,
        help_text="Every device in this state (only `waiting_on_activation` has a use for codes).",
    )

    def validate(self, data):
        if ("ids" in data) == ("state" in data):
            raise serializers.ValidationError('Give either "ids" or "state".')
        return data


class IssuedCodeSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="device_id")
    mac = serializers.CharField()
    code = serializers.CharField()
    expires_at = serializers.DateTimeField()


class VerificationCodesResponseSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    codes = IssuedCodeSerializer(many=True)
    skipped = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="ids asked for that got no code: not a device of yours, or not waiting on activation",
    )


class PairingStartSerializer(serializers.Serializer):
    """RFC 8628's device authorization response, for the admin who signs a user in."""

    verification_uri = serializers.CharField(source="verification_url", help_text="Where the user enters the code.")
    verification_uri_complete = serializers.CharField(
        source="verification_url_complete", help_text="The same page with the code filled in."
    )
    user_code = serializers.CharField(help_text="`XXXX-XXXX`; single use; shown only in this answer.")
    expires_in = serializers.IntegerField(help_text="Seconds until the code expires.")
    expires_at = serializers.DateTimeField(source="request.expires_at")
