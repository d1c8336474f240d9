"""The provisioning CSV files people really make, each with the exact report the import gives and
what it leaves in the inventory: everything, or nothing at all."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from devices.imports import INLINE_MAX_ROWS, MAX_BYTES, MAX_ROWS, describe
from devices.models import Device, ImportFile, ImportJob, ImportRowError
from devices.services import devices_import_csv, import_job_run
from portal.models import AuditEvent
from portal.services import Actor
from tests.factories import DeviceFactory

CORPUS = Path(__file__).parent / "csv_corpus"
OTHER = "is already onboarded by another organization"
COLUMNS = "the columns are MAC id, Location, Display name, Model"
RESAVE = 'Save it as "CSV UTF-8" or "Unicode text".'


@pytest.fixture
def inventory(tenant_a, tenant_b):
    """One phone already in A's inventory, one in another organization's."""
    DeviceFactory(tenant=tenant_a, mac="00-15-65-00-07-01", location="Old")
    DeviceFactory(tenant=tenant_b, mac="00-15-65-00-0A-02", location="Theirs")


def run(admin, name: str | None = None, data: bytes | None = None) -> ImportJob:
    data = (CORPUS / name).read_bytes() if data is None else data
    actor = Actor.of_user(admin.user, token=None)
    return devices_import_csv(tenant=admin.tenant, actor=actor, file_name=name or "generated.csv", data=data)


def devices_of(tenant) -> dict:
    return {
        d.mac: (d.location, d.display_name, str(d.model) if d.model_id else None)
        for d in Device.objects.filter(tenant=tenant).select_related("model")
    }


def assert_nothing_written(job, tenant, before: dict):
    assert job.status == "failed"
    assert devices_of(tenant) == before
    assert job.created_count == 0
    assert not AuditEvent.objects.filter(tenant=tenant, action="device.onboard").exists()
    assert ImportRowError.objects.filter(job=job).count() == job.error_count


GOOD = {
    "good_minimal.csv": {
        "00-15-65-00-00-01": ("Building 1", "", None),
        "00-15-65-00-00-02": ("Building 1", "", None),
        "00-15-65-00-00-03": ("Building 2", "", None),
        "00-15-65-00-00-04": ("Building 2", "", None),
    },
    "good_all_columns_crlf.csv": {
        "00-15-65-00-01-01": ("Reception", "Front desk", "Yealink T54W"),
        "00-15-65-00-01-02": ("Reception", "Back office", "Yealink T57W"),
        "64-16-7F-00-01-03": ("Lab", "Lab phone", "Poly VVX 450"),
        "00-15-65-00-01-04": ("Lab", "", None),
    },
    "good_utf8_bom_semicolon.csv": {
        "00-15-65-00-02-01": ("Zürich, Büro 3", "Empfang", None),
        "00-15-65-00-02-02": ("Zürich; Halle 1", "Lager", None),
    },
    "good_utf16le_tab.txt": {
        "00-15-65-00-03-01": ("München", "Empfang", "Yealink T54W"),
        "00-15-65-00-03-02": ("München", "会議室", None),
    },
    "good_utf16be_comma.csv": {"00-15-65-00-04-01": ("Tokyo", "", None)},
    "good_quoted.csv": {
        "00-15-65-00-05-01": ("Building 1, Floor 2", 'The "big" room', None),
        "00-15-65-00-05-02": ("Lobby", "padded name", None),
    },
    "good_blank_lines_and_header_variants.csv": {
        "00-15-65-00-06-01": ("Hall", "", None),
        "00-15-65-00-06-02": ("Hall", "Desk", "Yealink T54W"),
    },
}


@pytest.mark.parametrize("name", GOOD)
def test_it_imports_every_row_of_a_good_file(admin_a, inventory, name):
    job = run(admin_a, name)

    assert (job.status, job.errors, job.error_count) == ("done", [], 0)
    assert (job.total_rows, job.created_count, job.unchanged_count) == (len(GOOD[name]), len(GOOD[name]), 0)
    after = devices_of(admin_a.tenant)
    assert after.pop("00-15-65-00-07-01")[0] == "Old"
    assert after == GOOD[name]


def test_it_skips_rows_already_onboarded_and_counts_them_unchanged(admin_a, inventory):
    job = run(admin_a, "good_reupload.csv")

    assert (job.status, job.created_count, job.unchanged_count) == ("done", 1, 1)
    tenant_devices = devices_of(admin_a.tenant)
    assert tenant_devices["00-15-65-00-07-01"][0] == "Old"  # left as it was, not overwritten
    assert tenant_devices["00-15-65-00-07-02"] == ("New", "", None)


def test_uploading_the_same_file_again_changes_nothing(admin_a, inventory):
    first = run(admin_a, "good_all_columns_crlf.csv")
    again = run(admin_a, "good_all_columns_crlf.csv")

    assert (first.created_count, first.unchanged_count) == (4, 0)
    assert (again.status, again.created_count, again.unchanged_count) == ("done", 0, 4)
    assert Device.objects.filter(tenant=admin_a.tenant).count() == 5


BAD = {
    "bad_macs.csv": [
        (2, "MAC id", '"00-15-65-ZZ" is not a MAC address'),
        (3, "MAC id", "a MAC address is required"),
        # row 4 is blank; numbers stay those of the spreadsheet
        (6, "MAC id", '"00 15 65 00 08 02" is not a MAC address'),
    ],
    "bad_duplicates.csv": [
        (4, "MAC id", "00-15-65-00-09-01 is also in row 2"),
        (5, "MAC id", "00-15-65-00-09-01 is also in row 2"),
    ],
    "bad_other_organization.csv": [(3, "MAC id", f"00-15-65-00-0A-02 {OTHER}")],
    "bad_unknown_model.csv": [
        (3, "Model", '"T99" is not a known device model'),
        (4, "Model", '"Nokia 3310" is not a known device model'),
    ],
    "bad_lengths.csv": [
        (2, "Location", "is 101 characters long; the limit is 100"),
        (3, "Location", "a location is required"),
        (4, "Display name", "is 120 characters long; the limit is 100"),
    ],
    "bad_too_many_columns.csv": [(3, "column 3", "has 3 values; the header has 2 columns")],
    "bad_unknown_header.csv": [(1, "Colour", f'unknown column "Colour"; {COLUMNS}')],
    "bad_missing_columns.csv": [
        (1, "MAC id", "the header has no MAC id column"),
        (1, "Location", "the header has no Location column"),
    ],
    "bad_repeated_header.csv": [(1, "MAC address", '"MAC address" repeats the column "MAC"')],
    "bad_empty.csv": [(None, "", "The file is empty. Start it with the header MAC id,Location,Display name,Model.")],
    "bad_header_only.csv": [(None, "", "The file has no rows under its header: add one row per phone.")],
    "bad_latin1.csv": [
        (None, "", f"The file is not UTF-8 text: line 2 has a byte that is not (0xFC). {RESAVE}")
    ],
    "bad_utf16_without_bom.csv": [(None, "", f"The file looks like UTF-16 without a byte order mark. {RESAVE}")],
    "bad_utf16_odd_length.csv": [
        (None, "", f"The file is not UTF-16 text: line 3 has a byte that is not (0x67). {RESAVE}")
    ],
}


@pytest.mark.parametrize("name", BAD)
def test_it_reports_every_problem_of_a_bad_file_and_writes_nothing(admin_a, inventory, name):
    before = devices_of(admin_a.tenant)

    job = run(admin_a, name)

    assert [(e["row"], e["column"], e["message"]) for e in job.errors] == BAD[name]
    assert job.error_count == len(BAD[name])
    assert_nothing_written(job, admin_a.tenant, before)


def test_an_error_reads_as_row_column_and_problem(admin_a, inventory):
    job = run(admin_a, "bad_macs.csv")

    assert describe(job.errors[0]) == 'row 2, MAC id: "00-15-65-ZZ" is not a MAC address'
    row_error = run(admin_a, "bad_too_many_columns.csv").errors[0]
    assert describe(row_error) == "row 3, column 3: has 3 values; the header has 2 columns"


def test_another_organizations_mac_is_refused_without_naming_it(admin_a, inventory, tenant_b):
    job = run(admin_a, "bad_other_organization.csv")

    assert tenant_b.name not in str(job.errors)
    assert Device.objects.get(mac="00-15-65-00-0A-02").tenant == tenant_b


def test_one_bad_row_among_many_good_ones_writes_nothing(admin_a):
    rows = [f"00:15:65:01:{n // 256:02X}:{n % 256:02X},Floor {n % 7}" for n in range(900)]
    rows[456] = "00:15:65:01:ZZ:ZZ,Floor 1"
    job = run(admin_a, data=("MAC id,Location\n" + "\n".join(rows)).encode())

    assert [(e["row"], e["column"]) for e in job.errors] == [(458, "MAC id")]
    assert_nothing_written(job, admin_a.tenant, {})


def test_it_lists_the_first_thousand_errors_and_keeps_all_of_them_for_the_download(admin_a):
    rows = "\n".join(f"bad-{n}," for n in range(600))  # two problems a row
    job = run(admin_a, data=f"MAC id,Location\n{rows}\n".encode())

    assert job.error_count == 1200
    assert len(job.errors) == 1000
    assert job.errors[:2] == [
        {"row": 2, "column": "MAC id", "message": '"bad-0" is not a MAC address'},
        {"row": 2, "column": "Location", "message": "a location is required"},
    ]
    full = list(ImportRowError.objects.filter(job=job).order_by("id").values_list("row", "column"))
    assert len(full) == 1200
    assert full[-2:] == [(601, "MAC id"), (601, "Location")]


def test_a_file_over_50_mb_is_refused_before_any_work(admin_a, django_assert_max_num_queries):
    data = b"MAC id,Location\n" + b"0" * MAX_BYTES

    with django_assert_max_num_queries(7):  # the job, its error, the audit entry: no row is read
        job = run(admin_a, data=data)

    assert [e["message"] for e in job.errors] == [
        f"The file is {len(data):,} bytes; the limit is 50 MB (52,428,800 bytes). Split it into smaller files."
    ]
    assert (job.status, job.total_rows) == ("failed", 0)


def test_a_file_over_a_million_rows_is_refused_before_any_row_is_checked(admin_a, django_assert_max_num_queries):
    data = b"MAC id,Location\n" + b"x,y\n" * (MAX_ROWS + 1)

    with django_assert_max_num_queries(7):
        job = run(admin_a, data=data)

    assert [e["message"] for e in job.errors] == [
        "The file has more than 1,000,000 rows; the limit is 1,000,000. Split it into smaller files."
    ]
    assert ImportRowError.objects.filter(job=job).count() == 1


def test_it_checks_and_writes_with_the_same_number_of_queries_for_10_or_1000_rows(
    admin_a, django_assert_num_queries
):
    def file(first: int, count: int) -> bytes:
        macs = (f"00:15:65:03:{n // 256:02X}:{n % 256:02X}" for n in range(first, first + count))
        rows = "\n".join(f"{mac},Floor,Desk,T54W" for mac in macs)
        return f"MAC id,Location,Display name,Model\n{rows}\n".encode()

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        assert run(admin_a, data=file(0, 10)).created_count == 10
    with django_assert_num_queries(len(small.captured_queries)):
        assert run(admin_a, data=file(100, INLINE_MAX_ROWS)).created_count == INLINE_MAX_ROWS


def test_an_import_is_audited_once_for_the_file_not_once_per_device(admin_a, inventory):
    job = run(admin_a, "good_reupload.csv")

    imports = AuditEvent.objects.filter(action="devices.import", object_id=job.pk)
    assert [(e.actor_label, e.details["created"], e.details["unchanged"]) for e in imports] == [
        (admin_a.user.username, 1, 1)
    ]
    assert not AuditEvent.objects.filter(action="device.onboard", tenant=admin_a.tenant).exists()


def test_a_file_over_1000_rows_is_queued_for_a_worker_with_its_file_kept(admin_a):
    rows = "\n".join(f"00:15:65:04:{n // 256:02X}:{n % 256:02X},Floor" for n in range(INLINE_MAX_ROWS + 1))

    job = run(admin_a, data=f"MAC id,Location\n{rows}\n".encode())

    assert (job.status, job.total_rows, job.processed_rows) == ("queued", INLINE_MAX_ROWS + 1, 0)
    assert job.file is not None
    assert not Device.objects.filter(tenant=admin_a.tenant).exists()


def test_a_running_job_whose_worker_went_silent_is_taken_over(admin_a):
    rows = "\n".join(f"00:15:65:05:{n // 256:02X}:{n % 256:02X},Floor" for n in range(INLINE_MAX_ROWS + 1))
    job = run(admin_a, data=f"MAC id,Location\n{rows}\n".encode())
    fresh = timezone.now() - timedelta(minutes=1)
    ImportJob.objects.filter(pk=job.pk).update(status="validating", attempts=1, progress_at=fresh)

    assert import_job_run(job_id=job.pk) is None  # its worker may still be at it

    ImportJob.objects.filter(pk=job.pk).update(progress_at=timezone.now() - timedelta(minutes=6))
    assert import_job_run(job_id=job.pk) is not None
    job.refresh_from_db()
    assert (job.status, job.created_count, job.attempts) == ("done", INLINE_MAX_ROWS + 1, 2)
    assert import_job_run(job_id=job.pk) is None  # and a finished job is never run again


def test_a_queued_job_whose_file_is_gone_fails_with_a_clear_message(admin_a):
    rows = "\n".join(f"00:15:65:06:{n // 256:02X}:{n % 256:02X},Floor" for n in range(INLINE_MAX_ROWS + 1))
    job = run(admin_a, data=f"MAC id,Location\n{rows}\n".encode())
    ImportFile.objects.filter(job=job).delete()

    import_job_run(job_id=job.pk)

    job.refresh_from_db()
    assert (job.status, job.errors) == (
        "failed", [{"row": None, "column": "", "message": "The uploaded file is no longer available. Upload it again."}]
    )
