"""A worker's import on PostgreSQL writes devices while it reads the file (DeviceWriter) and keeps
them only if every row became a device; anything else gives way to the checked path. The job runs
here in-process, outside any transaction, as a Celery worker runs it (tests/devices/
test_import_worker.py runs the real worker)."""

import threading
import time

import pytest
from django.db import connection

from devices import imports, services
from devices.imports import AlreadyOnboarded, DeviceWriter
from devices.models import Device, ImportJob
from devices.services import devices_import_csv, import_job_run
from portal.models import AuditEvent
from portal.services import Actor
from tests.factories import DeviceFactory

# On PostgreSQL, as `make test` runs it: the writer streams there only.
pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 1500  # over the inline limit, so the job is queued for a worker


def mac(n: int) -> str:
    return f"00-15-65-0B-{n // 256:02X}-{n % 256:02X}"


def csv_of(lines: list[str]) -> bytes:
    return ("MAC id,Location\n" + "\n".join(lines) + "\n").encode()


@pytest.fixture(autouse=True)
def small_chunks(settings):
    settings.IMPORT_CHUNK_ROWS = 200  # a file of 1,500 rows crosses eight chunks


@pytest.fixture
def checked(monkeypatch):
    """The jobs that took the checked path (Staging), by id."""
    ran = []
    checked_path = services._import_checked

    def record(*, job, **kwargs):
        ran.append(job.pk)
        return checked_path(job=job, **kwargs)

    monkeypatch.setattr(services, "_import_checked", record)
    return ran


def run_job(admin, data: bytes) -> ImportJob:
    job = devices_import_csv(
        tenant=admin.tenant, actor=Actor.of_user(admin.user, token=None), file_name="fleet.csv", data=data
    )
    assert job.status == "queued"
    assert not connection.in_atomic_block
    import_job_run(job_id=job.pk)
    return ImportJob.objects.get(pk=job.pk)


def test_a_clean_file_of_new_devices_is_written_by_the_writer_alone(admin_a, checked):
    job = run_job(admin_a, csv_of(f"{mac(n)},Floor {n % 7}" for n in range(ROWS)))

    assert (job.status, job.created_count, job.unchanged_count, job.written_rows) == ("done", ROWS, 0, ROWS)
    assert Device.objects.filter(tenant=admin_a.tenant).count() == ROWS
    assert checked == []
    event = AuditEvent.objects.get(action="devices.import", object_id=job.pk)
    assert (event.details["created"], event.details["unchanged"]) == (ROWS, 0)


def test_a_bad_row_late_in_the_file_leaves_nothing_written_and_every_error_reported(admin_a, checked):
    lines = [f"{mac(n)},Floor" for n in range(ROWS)]
    lines[1398] = "00-15-65-ZZ-00-01,Floor"  # row 1400 of the file (the header is row 1)
    lines[1448] = f"{mac(10)},Floor"  # row 1450 repeats row 12

    job = run_job(admin_a, csv_of(lines))

    assert job.status == "failed"
    assert [(e["row"], e["column"]) for e in job.errors] == [(1400, "MAC id"), (1450, "MAC id")]
    assert "is also in row 12" in job.errors[1]["message"]
    assert not Device.objects.exists()
    assert checked == [job.pk]


def test_a_duplicate_with_no_other_error_is_found_after_streaming_gives_way(admin_a):
    lines = [f"{mac(n)},Floor" for n in range(ROWS)]
    lines[-1] = f"{mac(0)},Floor"  # the last row repeats the first

    job = run_job(admin_a, csv_of(lines))

    assert (job.status, [(e["row"], e["column"]) for e in job.errors]) == ("failed", [(ROWS + 1, "MAC id")])
    assert not Device.objects.exists()


def test_a_reupload_counts_the_devices_already_onboarded(admin_a, checked):
    for n in range(0, ROWS, 3):
        DeviceFactory(tenant=admin_a.tenant, mac=mac(n))

    job = run_job(admin_a, csv_of(f"{mac(n)},Floor" for n in range(ROWS)))

    assert (job.status, job.created_count, job.unchanged_count) == ("done", ROWS - ROWS // 3, ROWS // 3)
    assert Device.objects.filter(tenant=admin_a.tenant).count() == ROWS
    assert checked == [job.pk]  # the writer's count fell short, so the checked path counted them


def test_a_file_uploaded_again_is_read_once_more_only_by_the_checked_path(admin_a, settings, monkeypatch):
    """The writer gives way at the first chunk with an onboarded MAC, not after reading the whole file."""
    settings.IMPORT_CHUNK_ROWS = 100
    read = []  # rows read by each pass over the file
    chunks = imports.checked_chunks

    def counted(csv_file, size):
        read.append(0)
        for processed, rows, errors in chunks(csv_file, size):
            read[-1] = processed
            yield processed, rows, errors

    monkeypatch.setattr(imports, "checked_chunks", counted)
    for n in range(0, ROWS, 2):
        DeviceFactory(tenant=admin_a.tenant, mac=mac(n))

    job = run_job(admin_a, csv_of(f"{mac(n)},Floor" for n in range(ROWS)))

    assert (job.status, job.created_count, job.unchanged_count) == ("done", ROWS // 2, ROWS // 2)
    streamed, checked_rows = read
    assert checked_rows == ROWS
    # The first chunk gives way; the reader is then at most the writer's queue (two chunks), one
    # chunk waiting to go in and the one read before it looks again ahead.
    assert streamed <= 5 * settings.IMPORT_CHUNK_ROWS


def test_a_mac_of_another_organization_fails_the_file_and_writes_nothing(admin_a, admin_b):
    DeviceFactory(tenant=admin_b.tenant, mac=mac(700))

    job = run_job(admin_a, csv_of(f"{mac(n)},Floor" for n in range(ROWS)))

    assert (job.status, [(e["row"], e["message"]) for e in job.errors]) == (
        "failed",
        [(702, f"{mac(700)} is already onboarded by another organization")],
    )
    assert not Device.objects.filter(tenant=admin_a.tenant).exists()


# --- DeviceWriter ----------------------------------------------------------------------------------


def staged(first: int, count: int) -> list[tuple]:
    return [(n + 2, mac(n), "Floor", "", None) for n in range(first, first + count)]


def finish_nothing(written: int) -> None:
    pass


def test_a_taken_mac_makes_the_writer_give_way_keeping_nothing(admin_a):
    DeviceFactory(tenant=admin_a.tenant, mac=mac(5))
    writer = DeviceWriter(job_id=1, tenant_id=admin_a.tenant.pk, batch_rows=4)
    writer.write(staged(0, 10))

    assert writer.commit(expected=10, finish=finish_nothing, on_wait=finish_nothing) is False
    assert isinstance(writer.error, AlreadyOnboarded)  # found with the chunk, before any device was written
    assert list(Device.objects.values_list("mac", flat=True)) == [mac(5)]  # nothing of the writer's was kept


def test_a_mac_twice_in_the_rows_makes_the_writer_give_way_at_the_unique_index(admin_a):
    writer = DeviceWriter(job_id=7, tenant_id=admin_a.tenant.pk, batch_rows=4)
    writer.write(staged(0, 10))
    writer.write(staged(5, 1))  # in no inventory yet, so only the insert finds it

    assert writer.commit(expected=11, finish=finish_nothing, on_wait=finish_nothing) is False
    assert writer.gave_way and not isinstance(writer.error, AlreadyOnboarded)
    assert not Device.objects.exists()


def test_the_writer_runs_finish_in_its_transaction_and_commits(admin_a):
    finished = []
    writer = DeviceWriter(job_id=2, tenant_id=admin_a.tenant.pk, batch_rows=4)
    writer.write(staged(0, 10))
    writer.write(staged(10, 5))

    assert writer.commit(expected=15, finish=finished.append, on_wait=finish_nothing) is True
    assert finished == [15]
    assert sorted(Device.objects.filter(tenant=admin_a.tenant).values_list("mac", flat=True)) == [
        mac(n) for n in range(15)
    ]


def test_a_failed_writer_never_blocks_the_reader_and_its_error_comes_back(admin_a):
    writer = DeviceWriter(job_id=3, tenant_id=admin_a.tenant.pk, batch_rows=4)
    writer.write([(2, "not a mac at all, far too long for the column", "Floor", "", None)])
    done = threading.Event()

    def read_on():
        for first in range(0, 2000, 100):  # far more chunks than the writer's queue holds
            writer.write(staged(first, 100))
        done.set()

    reader = threading.Thread(target=read_on)
    reader.start()
    reader.join(timeout=30)
    assert done.is_set(), "the reader blocked on a writer that had failed"
    with pytest.raises(Exception, match="too long"):
        writer.commit(expected=2001, finish=finish_nothing, on_wait=finish_nothing)
    assert not Device.objects.exists()


def test_an_abandoned_writer_keeps_nothing(admin_a):
    writer = DeviceWriter(job_id=4, tenant_id=admin_a.tenant.pk, batch_rows=4)
    writer.write(staged(0, 50))
    writer.abandon()
    writer.abandon()  # twice is harmless

    assert writer.commit(expected=50, finish=finish_nothing, on_wait=finish_nothing) is False
    assert not Device.objects.exists()


def test_the_writer_commits_only_when_the_count_is_the_one_expected(admin_a):
    writer = DeviceWriter(job_id=6, tenant_id=admin_a.tenant.pk, batch_rows=4)
    writer.write(staged(0, 10))

    assert writer.commit(expected=11, finish=finish_nothing, on_wait=finish_nothing) is False
    assert writer.written == 10
    assert not Device.objects.exists()


def test_a_reader_stopped_while_waiting_leaves_nothing_committed(admin_a):
    """A Celery time limit raised in the reading side while the writer works: the writer rolls back."""
    writer = DeviceWriter(job_id=5, tenant_id=admin_a.tenant.pk, batch_rows=4)
    writer.write(staged(0, 40))

    in_finish = threading.Event()

    def finish_once_stopped(written: int) -> None:
        in_finish.set()
        deadline = time.monotonic() + 10  # not wait_until: an error raised here would roll back by itself
        while not writer._cancelled and time.monotonic() < deadline:
            time.sleep(0.001)

    def time_limit(written: int) -> None:
        assert in_finish.wait(10)  # stopped while the writer is inside `finish`, its last step before the commit
        raise TimeoutError("soft time limit")

    with pytest.raises(TimeoutError):
        writer.commit(expected=40, finish=finish_once_stopped, on_wait=time_limit)
    assert in_finish.is_set() and not writer._thread.is_alive()
    assert not Device.objects.exists()
