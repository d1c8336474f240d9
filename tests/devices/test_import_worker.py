"""Big imports on a real Celery worker (Redis broker, the test database): progress seen while the
job runs, and imports of overlapping files running at the same time."""

import time

import pytest

from devices import tasks
from devices.models import Device, ImportFile, ImportJob
from devices.services import devices_import_csv
from portal.models import AuditEvent
from portal.services import Actor
from tests.workers import running_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Small batches, so that a file of a few thousand rows reports progress many times.
CHUNK = 500


@pytest.fixture
def import_worker(transactional_db):
    with running_worker(concurrency=2, extra_env={"IMPORT_CHUNK_ROWS": str(CHUNK)}) as worker:
        yield worker


def csv_of(macs: range, location: str = "Floor") -> bytes:
    rows = "\n".join(f"00:15:65:{n >> 16 & 255:02X}:{n >> 8 & 255:02X}:{n & 255:02X},{location} {n % 9}" for n in macs)
    return f"MAC id,Location\n{rows}\n".encode()


def submit(caller, data: bytes, name: str = "phones.csv") -> ImportJob:
    return devices_import_csv(tenant=caller.tenant, actor=Actor.of_user(caller.user), file_name=name, data=data)


def watch(*jobs: ImportJob, timeout: float = 120) -> list[tuple]:
    """Poll the job rows as the job page does until every job has ended; the snapshots seen."""
    seen, deadline = [], time.monotonic() + timeout
    ids = [job.pk for job in jobs]
    while time.monotonic() < deadline:
        rows = list(
            ImportJob.objects.filter(pk__in=ids)
            .order_by("pk")
            .values_list("pk", "status", "processed_rows", "written_rows", "unchanged_count")
        )
        for row in rows:
            if not seen or seen[-1] != row:
                seen.append(row)
        if all(status in ("done", "failed") for _, status, *_ in rows):
            return seen
        time.sleep(0.005)
    raise AssertionError(f"imports still running after {timeout} s: {rows}")


def test_a_big_file_runs_on_the_worker_and_its_progress_is_seen_while_it_runs(import_worker, admin_a):
    total = 20_000
    job = submit(admin_a, csv_of(range(total)))
    assert job.status == "queued"

    seen = watch(job)

    job.refresh_from_db()
    assert (job.status, job.total_rows, job.created_count, job.unchanged_count) == ("done", total, total, 0)
    assert (job.processed_rows, job.written_rows, job.attempts) == (total, total, 1)
    assert Device.objects.filter(tenant=admin_a.tenant).count() == total
    assert not ImportFile.objects.filter(job=job).exists()  # the upload is not kept once imported
    validating = [processed for _, status, processed, _, _ in seen if status == "validating"]
    writing = [written for _, status, _, written, _ in seen if status == "writing"]
    # Values between the ends, each one larger than the last: the bar moves while the job runs.
    assert any(0 < processed < total for processed in validating), seen
    assert any(0 < written < total for written in writing), seen
    assert validating == sorted(validating) and writing == sorted(writing)
    assert all(processed == total for _, status, processed, _, _ in seen if status == "writing")


def test_overlapping_files_imported_at_once_never_duplicate_and_are_each_written_whole(import_worker, admin_a):
    first = submit(admin_a, csv_of(range(0, 12_000)), "first.csv")
    second = submit(admin_a, csv_of(range(6_000, 18_000)), "second.csv")

    watch(first, second)

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("done", "done"), (first.errors, second.errors)
    macs = list(Device.objects.filter(tenant=admin_a.tenant).values_list("mac", flat=True))
    assert len(macs) == len(set(macs)) == 18_000
    # Each overlapping row was created by exactly one of the two, and counted unchanged by the other.
    assert first.created_count + second.created_count == 18_000
    assert first.unchanged_count + second.unchanged_count == 6_000
    for job in (first, second):
        audited = AuditEvent.objects.get(action="devices.import", object_id=job.pk)
        assert (audited.details["created"], audited.details["unchanged"]) == (job.created_count, job.unchanged_count)

    again = submit(admin_a, csv_of(range(0, 12_000)), "first-again.csv")
    watch(again)
    again.refresh_from_db()
    assert (again.status, again.created_count, again.unchanged_count) == ("done", 0, 12_000)
    assert Device.objects.count() == 18_000


def test_overlapping_files_of_two_organizations_leave_one_whole_and_the_other_untouched(
    import_worker, admin_a, admin_b
):
    ours = submit(admin_a, csv_of(range(0, 12_000)), "ours.csv")
    theirs = submit(admin_b, csv_of(range(6_000, 18_000)), "theirs.csv")

    watch(ours, theirs)

    ours.refresh_from_db()
    theirs.refresh_from_db()
    assert sorted([ours.status, theirs.status]) == ["done", "failed"]
    winner, loser = (ours, theirs) if ours.status == "done" else (theirs, ours)
    assert Device.objects.filter(tenant=winner.tenant).count() == winner.created_count == 12_000
    assert Device.objects.filter(tenant=loser.tenant).count() == 0  # nothing half-written
    assert loser.error_count == 6_000
    assert {e["message"].split(" ", 1)[1] for e in loser.errors} == {"is already onboarded by another organization"}
    assert Device.objects.count() == 12_000


def test_a_job_delivered_twice_runs_once(import_worker, admin_a):
    job = submit(admin_a, csv_of(range(3_000)))
    tasks.import_job_run.delay(job.pk)
    tasks.import_job_run.delay(job.pk)

    watch(job)
    time.sleep(1)  # let the extra deliveries reach the worker and find the job taken

    job.refresh_from_db()
    assert (job.status, job.created_count, job.attempts) == ("done", 3_000, 1)
    assert AuditEvent.objects.filter(action="devices.import", object_id=job.pk).count() == 1
    assert Device.objects.count() == 3_000
