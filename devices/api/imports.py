"""CSV import over the API: `POST /api/v1/devices/import/` and `GET /api/v1/imports/{id}/`."""

import re

from django.http import StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from devices import services
from devices.choices import ImportStatus
from devices.exports import csv_lines
from devices.imports import MAX_BYTES
from devices.models import ImportJob
from devices.selectors import IMPORT_ERRORS_HEADER, import_job_error_rows, import_job_get, import_job_list
from portal.api.pagination import KeysetCursorPagination
from portal.api.views import TenantAPIView
from portal.choices import Role

_FILENAME = re.compile(r'filename="?([^";]+)"?')


class CsvBodyParser(BaseParser):
    """A raw `text/csv` body: the bytes as sent, one past the limit at most."""

    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        return stream.read(MAX_BYTES + 1) if stream is not None else b""


class ImportErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(allow_null=True)
    column = serializers.CharField()
    message = serializers.CharField()


class ImportJobSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    errors = ImportErrorSerializer(many=True, help_text="the first 1,000 errors; `error_count` is the total")
    errors_csv = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by_label")

    class Meta:
        model = ImportJob
        fields = [
            "id", "url", "file_name", "file_size", "status", "total_rows", "processed_rows", "written_rows",
            "created_count", "unchanged_count", "error_count", "errors", "errors_csv", "created_by", "created_at",
            "started_at", "finished_at",
        ]

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_url(self, job) -> str:
        return self._absolute(reverse("api-import-detail", args=[job.pk]))

    def get_errors_csv(self, job) -> str | None:
        """Every error as CSV (Row, Column, Problem)."""
        return self._absolute(reverse("api-import-errors", args=[job.pk])) if job.error_count else None


class ImportFileSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="the CSV: header `MAC id,Location` and optionally `Display name,Model`")


class DevicesImportView(TenantAPIView):
    allowed_roles = (Role.ADMIN,)
    parser_classes = [MultiPartParser, CsvBodyParser]

    @extend_schema(
        request={"multipart/form-data": ImportFileSerializer, "text/csv": OpenApiTypes.BINARY},
        responses={
            201: OpenApiResponse(ImportJobSerializer, description="imported here (up to 1,000 rows)"),
            202: OpenApiResponse(ImportJobSerializer, description="queued for a worker; poll its `url`"),
            400: OpenApiResponse(ImportJobSerializer, description="nothing imported; `errors` says why"),
        },
    )
    def post(self, request):
        """Onboard the devices of a CSV file, all or nothing. Rows already in the inventory are skipped."""
        if isinstance(request.data, bytes):
            match = _FILENAME.search(request.headers.get("Content-Disposition", ""))
            name, data = (match.group(1) if match else "upload.csv"), request.data
        elif upload := request.FILES.get("file"):
            name, data = upload.name, upload.read(MAX_BYTES + 1)
        else:
            raise ValidationError({"file": ["Send the CSV as a multipart `file` or as a text/csv body."]})
        job = services.devices_import_csv(tenant=self.tenant, actor=self.actor, file_name=name, data=data)
        body = ImportJobSerializer(job, context={"request": request}).data
        code = {ImportStatus.QUEUED: status.HTTP_202_ACCEPTED, ImportStatus.DONE: status.HTTP_201_CREATED}.get(
            job.status, status.HTTP_400_BAD_REQUEST
        )
        return Response(body, status=code, headers={"Location": body["url"]})


class ImportListView(TenantAPIView):
    allowed_roles = (Role.ADMIN,)
    pagination_class = KeysetCursorPagination

    def get_keyset_ordering(self, request):
        return ["-created_at", "-id"]

    @extend_schema(responses=ImportJobSerializer(many=True))
    def get(self, request):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(import_job_list(tenant=self.tenant), request, view=self)
        return paginator.get_paginated_response(ImportJobSerializer(page, many=True, context={"request": request}).data)


class ImportDetailView(TenantAPIView):
    tenant_model = ImportJob
    allowed_roles = (Role.ADMIN,)

    @extend_schema(responses=ImportJobSerializer)
    def get(self, request, pk: int):
        job = import_job_get(tenant=self.tenant, pk=pk)
        return Response(ImportJobSerializer(job, context={"request": request}).data)


class CsvRenderer(BaseRenderer):
    """Lets a client that asks for `Accept: text/csv` through content negotiation."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return "\n".join(f"{key}: {value}" for key, value in (data or {}).items())


class ImportErrorsView(TenantAPIView):
    tenant_model = ImportJob
    allowed_roles = (Role.ADMIN,)
    renderer_classes = [JSONRenderer, CsvRenderer]

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.BINARY})
    def get(self, request, pk: int):
        job = import_job_get(tenant=self.tenant, pk=pk)
        rows = import_job_error_rows(job=job)
        response = StreamingHttpResponse(csv_lines(IMPORT_ERRORS_HEADER, rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
        return response
