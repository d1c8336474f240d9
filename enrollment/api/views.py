from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from devices.api.serializers import DeviceSerializer
from devices.models import Device
from devices.selectors import device_get
from enrollment import services
from enrollment.api.serializers import (
    PairingStartSerializer,
    VerificationCodesRequestSerializer,
    VerificationCodesResponseSerializer,
)
from portal.access import ADMIN
from portal.api.views import TenantAPIView


class DeviceVerificationCodeView(TenantAPIView):
    tenant_model = Device
    allowed_roles = ADMIN

    @extend_schema(
        request=None,
        responses={201: DeviceSerializer},
        summary="Generate a verification code for a device",
        description=(
            "Issues a new six-digit code, valid 24 hours and single use, for a device waiting on "
            "activation; any earlier code of the device stops working. Answers 201 with the device, "
            "its `verification_code` filled in. A device already enrolled: 400."
        ),
    )
    def post(self, request, pk: int):
        services.verification_code_issue(device=device_get(tenant=self.tenant, pk=pk), actor=self.actor)
        device = device_get(tenant=self.tenant, pk=pk)
        return Response(DeviceSerializer(device, context={"request": request}).data, status=status.HTTP_201_CREATED)


class VerificationCodesView(TenantAPIView):
    allowed_roles = ADMIN

    @extend_schema(
        request=VerificationCodesRequestSerializer,
        responses={201: VerificationCodesResponseSerializer},
        summary="Generate verification codes in bulk",
        description=(
            'Body `{"ids": [...]}` (up to 100,000) or `{"state": "waiting_on_activation"}`. Issues a new '
            "code for each device of yours that waits on activation; other ids are skipped. Answers 201 "
            "with the number issued, the codes, and the ids skipped."
        ),
    )
    def post(self, request):
        data = VerificationCodesRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issued = services.verification_codes_issue(tenant=self.tenant, actor=self.actor, **data.validated_data)
        given = {issue.device_id for issue in issued}
        skipped = sorted(set(data.validated_data.get("ids") or ()) - given)
        body = VerificationCodesResponseSerializer({"count": len(issued), "codes": issued, "skipped": skipped}).data
        return Response(body, status=status.HTTP_201_CREATED)


class DeviceSignInView(TenantAPIView):
    tenant_model = Device
    allowed_roles = ADMIN

    @extend_schema(
        request=None,
        responses={201: PairingStartSerializer},
        summary="Start signing a user in to a device",
        description=(
            "For a device waiting for sign-in: a pairing code, valid 15 minutes and single use, that a "
            "user of your organization enters at `verification_uri` to sign the phone in as themselves "
            "(the Teams admin center's *Sign in a user*). Any earlier code of the device stops working. "
            "The code is shown only in this answer. A device not enrolled or already signed in: 400."
        ),
    )
    def post(self, request, pk: int):
        started = services.pairing_request_start(device=device_get(tenant=self.tenant, pk=pk), actor=self.actor)
        return Response(PairingStartSerializer(started).data, status=status.HTTP_201_CREATED)


class DeviceSignOutView(TenantAPIView):
    tenant_model = Device
    allowed_roles = ADMIN

    @extend_schema(
        request=None,
        responses={200: DeviceSerializer},
        summary="Sign a device out",
        description=(
            "The device goes back to `waiting_for_sign_in`, with no user and no phone number, and is "
            "asked to sync its configuration. Signing out a device nobody is signed in to changes nothing. "
            "Answers 200 with the device."
        ),
    )
    def post(self, request, pk: int):
        device = device_get(tenant=self.tenant, pk=pk)
        services.device_sign_out(device=device, actor=self.actor)
        return Response(DeviceSerializer(device, context={"request": request}).data)
