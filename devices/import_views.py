"""The Upload tab of "Provision devices", the import job page and the list of past imports."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from devices import services
from devices.choices import ImportStatus
from devices.exports import csv_lines
from devices.forms import ImportForm
from devices.imports import MAX_BYTES, MAX_ROWS, SHOWN_ERRORS, TEMPLATE_HEADER, TEMPLATE_NAME
from devices.models import ImportJob
from devices.selectors import IMPORT_ERRORS_HEADER, import_job_error_rows, import_job_get, import_job_page
from portal.access import ADMIN, member_required
from portal.pagination import InvalidCursor

LIMITS = {"max_megabytes": MAX_BYTES // 1024 // 1024, "max_rows": MAX_ROWS, "shown_errors": SHOWN_ERRORS}


@member_required(ADMIN)
def import_upload(request: HttpRequest) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None)
    job = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        # One byte past the limit is enough for the service to refuse the file without reading it all.
        data = upload.read(MAX_BYTES + 1)
        job = services.devices_import_csv(tenant=request.tenant, actor=request.actor, file_name=upload.name, data=data)
        if job.status == ImportStatus.QUEUED:
            url = reverse("devices:import_detail", args=[job.pk])
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
        form = ImportForm()
    context = {"form": form, "job": job, "title": "Provision devices", "tab": "upload", **LIMITS}
    if request.htmx:
        return render(request, "devices/import_form.html#pane", context)
    return render(request, "devices/import_form.html", context)


@member_required(ADMIN)
def import_template(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(next(csv_lines(TEMPLATE_HEADER, [])), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{TEMPLATE_NAME}"'
    return response


@member_required(ADMIN)
def import_list(request: HttpRequest) -> HttpResponse:
    arguments = dict(tenant=request.tenant, page_size=settings.INVENTORY_PAGE_SIZE)
    try:
        page = import_job_page(cursor=request.GET.get("cursor"), **arguments)
    except InvalidCursor:
        page = import_job_page(cursor=None, **arguments)
    return render(request, "devices/import_list.html", {"page": page})


@member_required(ADMIN, model=ImportJob)
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The job page; HTMX polls its progress partial every second until the job is done or failed."""
    job = import_job_get(tenant=request.tenant, pk=pk)
    context = {"job": job, **LIMITS}
    if request.htmx:
        return render(request, "devices/import_detail.html#progress", context)
    return render(request, "devices/import_detail.html", context)


@member_required(ADMIN, model=ImportJob)
def import_errors(request: HttpRequest, pk: int) -> HttpResponse:
    job = import_job_get(tenant=request.tenant, pk=pk)
    rows = import_job_error_rows(job=job)
    response = StreamingHttpResponse(csv_lines(IMPORT_ERRORS_HEADER, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
    return response
