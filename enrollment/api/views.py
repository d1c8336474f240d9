from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from devices.api.serializers import DeviceSerializer
from devices.selectors import device_get
from enrollment import services
from enrollment.api.serializers import VerificationCodesRequestSerializer, VerificationCodesResponseSerializer
from portal.access import ADMIN
from portal.api.views import TenantAPIView


class DeviceVerificationCodeView(TenantAPIView):
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
            "with the number issued and the codes."
        ),
    )
    def post(self, request):
        data = VerificationCodesRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issued = services.verification_codes_issue(tenant=self.tenant, actor=self.actor, **data.validated_data)
        body = VerificationCodesResponseSerializer({"count": len(issued), "codes": issued}).data
        return Response(body, status=status.HTTP_201_CREATED)
