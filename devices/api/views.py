from django.db.models import prefetch_related_objects
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from devices import services
from devices.api.serializers import (
    DeviceCommandSerializer,
    DeviceCreateSerializer,
    DeviceIdsSerializer,
    DeviceSerializer,
    DeviceUpdateSerializer,
)
from devices.choices import DeviceState
from devices.models import Device, DeviceCommand
from devices.selectors import SORTS, device_command_get, device_get, device_list, sort_ordering
from enrollment.selectors import verification_codes_load
from enrollment.services import verification_codes_viewed
from portal.api.pagination import KeysetCursorPagination
from portal.api.permissions import request_membership
from portal.api.views import TenantAPIView

LIST_PARAMETERS = [
    OpenApiParameter("state", OpenApiTypes.STR, enum=DeviceState.values),
    OpenApiParameter("q", OpenApiTypes.STR, description="MAC fragment, display name, location, phone number or user"),
    OpenApiParameter("vendor", OpenApiTypes.STR),
    OpenApiParameter("model", OpenApiTypes.STR, description="`T54W`, `Yealink T54W` or a catalog id"),
    OpenApiParameter("location", OpenApiTypes.STR, description="contains, any case"),
    OpenApiParameter("online", OpenApiTypes.BOOL),
    OpenApiParameter(
        "policy_sync",
        OpenApiTypes.STR,
        enum=["in_sync", "pending", "failed"],
        description="pending: behind its policy version; failed: and the last check-sync failed",
    ),
    OpenApiParameter("sort", OpenApiTypes.STR, enum=[*SORTS, *[f"-{k}" for k in SORTS]]),
    OpenApiParameter("cursor", OpenApiTypes.STR),
    OpenApiParameter("page_size", OpenApiTypes.INT, description="1–500, default 50"),
]


class DeviceListView(TenantAPIView):
    pagination_class = KeysetCursorPagination

    def get_keyset_ordering(self, request):
        return sort_ordering(request.query_params.get("sort"))

    @extend_schema(parameters=LIST_PARAMETERS, responses=DeviceSerializer(many=True))
    def get(self, request):
        devices = device_list(tenant=self.tenant, filters=request.query_params)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(devices, request, view=self)
        verification_codes_load(tenant=self.tenant, devices=page)
        data = DeviceSerializer(page, many=True, context={"request": request}).data
        verification_codes_viewed(
            tenant=self.tenant, actor=self.actor, role=request_membership(request).role, devices=page
        )
        return paginator.get_paginated_response(data)

    @extend_schema(request=DeviceCreateSerializer, responses={201: DeviceSerializer})
    def post(self, request):
        data = DeviceCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        device = services.device_onboard(tenant=self.tenant, actor=self.actor, **data.validated_data)
        return Response(DeviceSerializer(device, context={"request": request}).data, status=status.HTTP_201_CREATED)


class DeviceDetailView(TenantAPIView):
    tenant_model = Device
    @extend_schema(responses=DeviceSerializer)
    def get(self, request, pk: int):
        device = device_get(tenant=self.tenant, pk=pk)
        data = DeviceSerializer(device, context={"request": request}).data
        verification_codes_viewed(
            tenant=self.tenant, actor=self.actor, role=request_membership(request).role, devices=[device]
        )
        return Response(data)

    @extend_schema(request=DeviceUpdateSerializer, responses=DeviceSerializer)
    def patch(self, request, pk: int):
        device = device_get(tenant=self.tenant, pk=pk)
        data = DeviceUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        device = services.device_update(device=device, actor=self.actor, data=data.validated_data)
        return Response(DeviceSerializer(device, context={"request": request}).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        services.device_delete(device=device_get(tenant=self.tenant, pk=pk), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _commands_response(commands, *, many: bool):
    prefetch_related_objects(commands, "attempts")  # the serializer lists each command's attempts
    if many:
        return Response({"results": DeviceCommandSerializer(commands, many=True).data}, status=status.HTTP_202_ACCEPTED)
    return Response(DeviceCommandSerializer(commands[0]).data, status=status.HTTP_202_ACCEPTED)


class DeviceCommandView(TenantAPIView):
    """POST /devices/{id}/restart/ or /resync/: 202 and the command (the one in flight, if any)."""

    tenant_model = Device

    kind: str = ""

    @extend_schema(request=None, responses={202: DeviceCommandSerializer})
    def post(self, request, pk: int):
        device = device_get(tenant=self.tenant, pk=pk)
        commands = services.device_commands_request(
            tenant=self.tenant, actor=self.actor, kind=self.kind, ids=[device.pk]
        )
        return _commands_response(commands, many=False)


class DevicesCommandView(TenantAPIView):
    """POST /devices/restart/ or /resync/ with `{"ids": [...]}`: 202 and one command per device."""

    kind: str = ""

    @extend_schema(request=DeviceIdsSerializer, responses={202: DeviceCommandSerializer(many=True)})
    def post(self, request):
        data = DeviceIdsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        commands = services.device_commands_request(
            tenant=self.tenant, actor=self.actor, kind=self.kind, ids=data.validated_data["ids"]
        )
        return _commands_response(commands, many=True)


class CommandDetailView(TenantAPIView):
    tenant_model = DeviceCommand
    @extend_schema(responses=DeviceCommandSerializer)
    def get(self, request, pk: int):
        return Response(DeviceCommandSerializer(device_command_get(tenant=self.tenant, pk=pk)).data)
