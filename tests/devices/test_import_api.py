"""CSV import over the REST API and in the portal: who may, what comes back, and other tenants' jobs."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from devices.imports import INLINE_MAX_ROWS, describe
from devices.models import Device, ImportJob
from tests.conftest import login
from tests.factories import DeviceFactory

IMPORT_URL = "/api/v1/devices/import/"
GOOD = b"MAC id,Location,Display name,Model\r\n00:15:65:00:00:01,Lobby,Front desk,T54W\r\n001565000002,Lab,,\r\n"
BAD = b"MAC id,Location\n00-15-65-ZZ,Lobby\n00:15:65:00:00:03,\n"


def big_file(rows: int = INLINE_MAX_ROWS + 1) -> bytes:
    lines = "\n".join(f"00:15:65:{n >> 16:02X}:{n >> 8 & 255:02X}:{n & 255:02X},Floor {n % 9}" for n in range(rows))
    return f"MAC id,Location\n{lines}\n".encode()


def upload(caller, data: bytes, name: str = "phones.csv"):
    return caller.api.post(IMPORT_URL, {"file": SimpleUploadedFile(name, data, "text/csv")}, format="multipart")


@pytest.mark.django_db
class TestImportApi:
    def test_a_small_file_is_imported_at_once_and_answers_201(self, admin_a):
        response = upload(admin_a, GOOD)

        assert response.status_code == 201
        body = response.json()
        assert response["Location"] == body["url"] == f"http://testserver/api/v1/imports/{body['id']}/"
        assert {k: body[k] for k in ("file_name", "status", "total_rows", "created_count", "unchanged_count")} == {
            "file_name": "phones.csv", "status": "done", "total_rows": 2, "created_count": 2, "unchanged_count": 0,
        }
        assert (body["errors"], body["error_count"], body["errors_csv"]) == ([], 0, None)
        assert set(Device.objects.filter(tenant=admin_a.tenant).values_list("mac", flat=True)) == {
            "00-15-65-00-00-01", "00-15-65-00-00-02",
        }

    def test_a_raw_text_csv_body_is_imported_too(self, admin_a):
        response = admin_a.api.post(
            IMPORT_URL, GOOD, content_type="text/csv", HTTP_CONTENT_DISPOSITION='attachment; filename="raw.csv"'
        )

        assert response.status_code == 201
        assert (response.json()["file_name"], response.json()["created_count"]) == ("raw.csv", 2)

    def test_a_bad_file_answers_400_with_every_error_and_writes_nothing(self, admin_a):
        response = upload(admin_a, BAD)

        assert response.status_code == 400
        body = response.json()
        assert body["status"] == "failed"
        assert body["errors"] == [
            {"row": 2, "column": "MAC id", "message": '"00-15-65-ZZ" is not a MAC address'},
            {"row": 3, "column": "Location", "message": "a location is required"},
        ]
        assert body["errors_csv"] == f"http://testserver/api/v1/imports/{body['id']}/errors.csv"
        assert not Device.objects.exists()

    def test_re_uploading_counts_the_devices_already_there_as_unchanged(self, admin_a):
        upload(admin_a, GOOD)

        body = upload(admin_a, GOOD).json()

        assert (body["status"], body["created_count"], body["unchanged_count"]) == ("done", 0, 2)

    def test_a_file_over_1000_rows_is_queued_and_answers_202_with_its_url(self, admin_a):
        response = upload(admin_a, big_file())

        assert response.status_code == 202
        body = response.json()
        assert (body["status"], body["total_rows"]) == ("queued", INLINE_MAX_ROWS + 1)
        polled = admin_a.api.get(body["url"])
        assert polled.status_code == 200
        assert polled.json()["status"] == "queued"

    def test_a_raw_body_larger_than_djangos_form_limit_is_accepted(self, admin_a, settings):
        data = big_file(110_000)
        assert len(data) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE

        response = admin_a.api.post(IMPORT_URL, data, content_type="text/csv")

        assert response.status_code == 202
        assert response.json()["total_rows"] == 110_000

    def test_the_errors_download_lists_every_error(self, admin_a):
        job_id = upload(admin_a, BAD).json()["id"]

        response = admin_a.api.get(f"/api/v1/imports/{job_id}/errors.csv")

        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        assert b"".join(response.streaming_content).decode("utf-8-sig").splitlines() == [
            "Row,Column,Problem",
            '2,MAC id,"""00-15-65-ZZ"" is not a MAC address"',
            "3,Location,a location is required",
        ]

    def test_the_list_shows_this_tenants_imports_newest_first(self, admin_a, admin_b):
        first = upload(admin_a, GOOD).json()["id"]
        second = upload(admin_a, BAD).json()["id"]
        upload(admin_b, b"MAC id,Location\n00:15:65:00:00:09,Elsewhere\n")

        body = admin_a.api.get("/api/v1/imports/").json()

        assert [job["id"] for job in body["results"]] == [second, first]

    def test_a_missing_file_is_a_400_that_says_how_to_send_it(self, admin_a):
        response = admin_a.api.post(IMPORT_URL, {}, format="multipart")

        assert response.status_code == 400
        assert "file" in response.json()

    def test_another_tenants_import_does_not_exist(self, admin_a, admin_b):
        job_id = upload(admin_a, BAD).json()["id"]

        assert admin_b.api.get(f"/api/v1/imports/{job_id}/").status_code == 404
        assert admin_b.api.get(f"/api/v1/imports/{job_id}/errors.csv").status_code == 404

    def test_technicians_may_neither_import_nor_read_imports(self, admin_a, tech_a):
        job_id = upload(admin_a, GOOD).json()["id"]

        assert upload(tech_a, GOOD).status_code == 403
        assert tech_a.api.get(f"/api/v1/imports/{job_id}/").status_code == 403
        assert tech_a.api.get("/api/v1/imports/").status_code == 403

    def test_nobody_gets_in_without_a_token(self, anon_api):
        assert anon_api.post(IMPORT_URL, GOOD, content_type="text/csv").status_code in (401, 403)
        assert not ImportJob.objects.exists()


@pytest.mark.django_db
class TestImportPages:
    def test_the_upload_tab_offers_the_template(self, client, admin_a):
        login(client, admin_a)

        page = client.get(reverse("devices:import"), HTTP_HX_REQUEST="true").content.decode()
        template = client.get(reverse("devices:import_template"))

        assert 'role="tab"' in page and "Template_Provisioning.csv" in page
        assert template["Content-Disposition"] == 'attachment; filename="Template_Provisioning.csv"'
        assert template.content.decode("utf-8-sig") == "MAC id,Location,Display name,Model\r\n"

    def test_the_add_pane_has_the_same_tabs(self, client, admin_a):
        login(client, admin_a)

        page = client.get(reverse("devices:create"), HTTP_HX_REQUEST="true").content.decode()

        assert reverse("devices:import") in page and "Provision devices" in page

    def test_a_small_file_shows_its_report_in_the_pane(self, client, admin_a):
        login(client, admin_a)

        page = client.post(
            reverse("devices:import"), {"file": SimpleUploadedFile("bad.csv", BAD)}, HTTP_HX_REQUEST="true"
        ).content.decode()

        assert "Nothing was imported." in page
        assert "a location is required" in page
        assert "&quot;00-15-65-ZZ&quot; is not a MAC address" in page
        job = ImportJob.objects.get()
        assert reverse("devices:import_errors", args=[job.pk]) in page

    def test_a_good_small_file_reports_what_it_added(self, client, admin_a):
        DeviceFactory(tenant=admin_a.tenant, mac="00-15-65-00-00-02")
        login(client, admin_a)

        page = client.post(reverse("devices:import"), {"file": SimpleUploadedFile("ok.csv", GOOD)}).content.decode()

        assert "1 device added" in " ".join(page.split())
        assert "1 already onboarded (unchanged)" in " ".join(page.split())

    def test_a_big_file_goes_to_its_job_page_which_polls_until_the_job_ends(self, client, admin_a):
        login(client, admin_a)

        response = client.post(reverse("devices:import"), {"file": SimpleUploadedFile("big.csv", big_file())})
        job = ImportJob.objects.get()
        assert response["Location"] == reverse("devices:import_detail", args=[job.pk])
        running = client.get(response["Location"], HTTP_HX_REQUEST="true").content.decode()
        job.status, job.error_count, job.errors = "failed", 1, [{"row": 5, "column": "MAC id", "message": "x"}]
        job.save()
        ended = client.get(response["Location"], HTTP_HX_REQUEST="true").content.decode()

        assert 'hx-trigger="every 1s"' in running and 'id="validated"' in running
        assert "hx-trigger" not in ended and "Nothing was imported." in ended

    def test_past_imports_are_listed(self, client, admin_a, admin_b):
        login(client, admin_a)
        upload(admin_a, GOOD, name="mine.csv")
        upload(admin_b, GOOD, name="theirs.csv")

        page = client.get(reverse("devices:imports")).content.decode()

        assert "mine.csv" in page and "theirs.csv" not in page

    def test_another_tenants_job_page_does_not_exist(self, client, admin_a, admin_b):
        job_id = upload(admin_b, BAD).json()["id"]
        login(client, admin_a)

        assert client.get(reverse("devices:import_detail", args=[job_id])).status_code == 404
        assert client.get(reverse("devices:import_errors", args=[job_id])).status_code == 404

    def test_technicians_cannot_open_any_import_page(self, client, admin_a, tech_a):
        job_id = upload(admin_a, BAD).json()["id"]
        login(client, tech_a)

        for url in (
            reverse("devices:import"), reverse("devices:imports"), reverse("devices:import_template"),
            reverse("devices:import_detail", args=[job_id]), reverse("devices:import_errors", args=[job_id]),
        ):
            assert client.get(url).status_code == 403, url
        assert client.post(reverse("devices:import"), {"file": SimpleUploadedFile("x.csv", GOOD)}).status_code == 403
        assert not Device.objects.exists()


def test_an_error_reads_the_way_the_design_spells_it():
    error = {"row": 14, "column": "MAC id", "message": '"00-15-65-ZZ" is not a MAC address'}

    assert describe(error) == 'row 14, MAC id: "00-15-65-ZZ" is not a MAC address'
