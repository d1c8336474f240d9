from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from policies import services
from policies.api.serializers import (
    PolicyAssignmentResultSerializer,
    PolicyAssignmentSerializer,
    PolicyCreateSerializer,
    PolicySerializer,
    PolicyUnassignmentSerializer,
    PolicyUpdateSerializer,
)
from policies.choices import PolicyKind
from policies.models import Policy
from policies.schema import SETTINGS
from policies.selectors import policy_get, policy_list
from portal.access import ADMIN
from portal.api.pagination import KeysetCursorPagination
from portal.api.views import TenantAPIView

SETTINGS_HELP = "; ".join(
    f"**{kind}**: " + ", ".join(f"`{s.key}` ({s.type})" for s in settings) for kind, settings in SETTINGS.items()
)


def _nested(error: DjangoValidationError, settings_keys) -> serializers.ValidationError:
    """Errors of settings under `settings`, as the client sent them: {"settings": {"forward_to": [...]}}."""
    if not hasattr(error, "error_dict"):
        return serializers.ValidationError({"non_field_errors": error.messages})
    body, nested = {}, {}
    for key, messages in error.message_dict.items():
        (nested if key not in ("name", "description", "kind") and key in settings_keys else body)[key] = messages
    if nested:
        body["settings"] = nested
    return serializers.ValidationError(body)


class PolicyListView(TenantAPIView):
    """Policies are for admins: technicians look devices up and read codes, nothing else."""

    allowed_roles = ADMIN
    pagination_class = KeysetCursorPagination

    def get_keyset_ordering(self, request):
        return ["id"]

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", OpenApiTypes.STR, enum=PolicyKind.values),
            OpenApiParameter("cursor", OpenApiTypes.STR),
        ],
        responses=PolicySerializer(many=True),
        summary="List policies",
    )
    def get(self, request):
        services.policy_defaults_ensure(tenant=self.tenant)
        kind = request.query_params.get("kind") or None
        if kind is not None and kind not in PolicyKind.values:
            raise serializers.ValidationError({"kind": [f'"{kind}" is not one of {", ".join(PolicyKind.values)}.']})
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(policy_list(tenant=self.tenant, kind=kind), request, view=self)
        return paginator.get_paginated_response(PolicySerializer(page, many=True).data)

    @extend_schema(
        request=PolicyCreateSerializer,
        responses={201: PolicySerializer},
        summary="Create a policy",
        description=f"Settings by kind: {SETTINGS_HELP}. A new policy changes no device until it is assigned.",
    )
    def post(self, request):
        data = PolicyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            policy = services.policy_create(tenant=self.tenant, actor=self.actor, **data.validated_data)
        except DjangoValidationError as error:
            kind = data.validated_data["kind"]
            raise _nested(error, {s.key for s in SETTINGS[kind]} | set(data.validated_data["settings"])) from None
        return Response(
            PolicySerializer(policy_get(tenant=self.tenant, pk=policy.pk)).data, status=status.HTTP_201_CREATED
        )


class PolicyDetailView(TenantAPIView):
    tenant_model = Policy
    allowed_roles = ADMIN

    @extend_schema(responses=PolicySerializer, summary="Get a policy")
    def get(self, request, pk: int):
        return Response(PolicySerializer(policy_get(tenant=self.tenant, pk=pk)).data)

    @extend_schema(
        request=PolicyUpdateSerializer,
        responses=PolicySerializer,
        summary="Change a policy",
        description="`settings` holds only the settings to change. A settings change raises the config version of "
        "every device the policy applies to; registered phones get it within the hour.",
    )
    def patch(self, request, pk: int):
        policy = policy_get(tenant=self.tenant, pk=pk)
        data = PolicyUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        try:
            services.policy_update(policy=policy, actor=self.actor, data=data.validated_data)
        except DjangoValidationError as error:
            keys = {s.key for s in SETTINGS[policy.kind]} | set(data.validated_data.get("settings", {}))
            raise _nested(error, keys) from None
        return Response(PolicySerializer(policy_get(tenant=self.tenant, pk=pk)).data)

    @extend_schema(
        responses={204: None}, summary="Delete a policy", description="A tenant default cannot be deleted (400)."
    )
    def delete(self, request, pk: int):
        services.policy_delete(policy=policy_get(tenant=self.tenant, pk=pk), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PolicyAssignmentsView(TenantAPIView):
    tenant_model = Policy
    allowed_roles = ADMIN

    @extend_schema(
        request=PolicyAssignmentSerializer,
        responses=PolicyAssignmentResultSerializer,
        summary="Assign a policy",
        description='`{"devices": [ids or MACs]}`, `{"users": [e-mail addresses]}` or `{"tenant_default": true}`. '
        "A device or user holding another policy of the kind has it replaced. Unknown (or another "
        "organization's) devices or users: 400, nothing assigned.",
    )
    def post(self, request, pk: int):
        policy = policy_get(tenant=self.tenant, pk=pk)
        data = PolicyAssignmentSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.policy_assign(policy=policy, actor=self.actor, **data.validated_data)
        return Response(PolicyAssignmentResultSerializer(result).data)

    @extend_schema(
        request=PolicyUnassignmentSerializer,
        responses=PolicyAssignmentResultSerializer,
        summary="Take a policy back",
        description='`{"devices": [...]}` or `{"users": [...]}`: they fall back to their user\'s policy, or the '
        "default.",
    )
    def delete(self, request, pk: int):
        policy = policy_get(tenant=self.tenant, pk=pk)
        data = PolicyUnassignmentSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.policy_unassign(policy=policy, actor=self.actor, **data.validated_data)
        return Response(PolicyAssignmentResultSerializer(result).data)
