"""`make run` on a bare machine: with no DATABASE_URL, CELERY_BROKER_URL or CACHE_URL the product
runs on SQLite, kombu's filesystem broker and a file cache, all under VAR_DIR."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL")


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """The environment of a bare machine, with its state in a fresh VAR_DIR, migrated."""
    var_dir = tmp_path_factory.mktemp("var")
    env = {k: v for k, v in os.environ.items() if k not in SERVICES}
    env["VAR_DIR"] = str(var_dir)
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return env, var_dir


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(args, env, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for(what: str, check, process: subprocess.Popen, log: Path, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what}: the process exited\n{log.read_text(errors='replace')[-3000:]}")
        if (found := check()) is not None:
            return found
        time.sleep(0.2)
    pytest.fail(f"{what}: not within {timeout} s\n{log.read_text(errors='replace')[-3000:]}")


def test_migrate_uses_sqlite_under_var_dir(embedded):
    _, var_dir = embedded
    assert (var_dir / "portal.sqlite3").stat().st_size > 0


def test_runserver_serves_the_login_page(embedded):
    env, var_dir = embedded
    port = free_port()
    log = var_dir / "runserver.log"
    server = start([sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"], env, log)

    def login_page():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2) as response:
                return response.status, response.read().decode()
        except OSError:
            return None

    try:
        status, page = wait_for("runserver", login_page, server, log)
    finally:
        stop(server)
    assert status == 200
    assert 'name="password"' in page and "SIP Gateway Portal" in page


def test_a_worker_receives_a_task_through_the_filesystem_broker(embedded):
    env, var_dir = embedded
    log = var_dir / "worker.log"
    worker = start(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "--loglevel=INFO", "--pool=solo",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"smoke-{os.getpid()}@%h"],
        env, log,
    )
    try:
        # Sent while the worker boots: the message waits in the broker's folder.
        sent = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "portal", "call", "enrollment.tasks.verification_codes_sweep"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=30,
        )
        assert sent.returncode == 0, sent.stderr
        task_id = sent.stdout.strip()
        wait_for("worker ready", lambda: True if b"ready." in log.read_bytes() else None, worker, log)
        assert "filesystem://" in log.read_text()
        # A worker started without -Q serves every lane.
        lanes = {line.split()[1] for line in log.read_text().splitlines() if line.strip().startswith(".> ")}
        assert lanes == {settings.CELERY_TASK_DEFAULT_QUEUE, settings.COMMANDS_QUEUE, settings.SYNC_QUEUE}
        wait_for(
            "task run by the worker",
            lambda: True if f"verification_codes_sweep[{task_id}] succeeded" in log.read_text() else None,
            worker, log,
        )
    finally:
        stop(worker)


@pytest.fixture(scope="module")
def demo(embedded):
    """The demo tenant `make run` seeds."""
    env, _ = embedded
    result = subprocess.run(
        [sys.executable, "manage.py", "seed_demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return env


def django_shell(env, code: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "shell", "--verbosity=0", "-c", code],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


ISSUE_CODES = """
import pathlib, time
from enrollment.services import verification_codes_issue
from portal.models import Tenant
from portal.services import Actor
tenant = Tenant.objects.get(name="Contoso (demo)")
pathlib.Path("{ready}").touch()
while not pathlib.Path("{go}").exists():  # every process starts writing at the same moment
    time.sleep(0.005)
for _ in range({rounds}):
    print(len(verification_codes_issue(tenant=tenant, actor=Actor.system("smoke"), state="waiting_on_activation")))
"""

def test_verification_codes_are_issued_regenerated_and_checked_on_sqlite(demo):
    code = """
from devices.models import Device
from enrollment.services import verification_code_check, verification_code_issue, verification_codes_issue
from portal.models import AuditEvent, Tenant
from portal.services import Actor
tenant = Tenant.objects.get(name="Contoso (demo)")
actor = Actor.system("smoke")
issued = verification_codes_issue(tenant=tenant, actor=actor, state="waiting_on_activation")
waiting = Device.objects.filter(tenant=tenant, state="waiting_on_activation").count()
device = Device.objects.get(pk=issued[0].device_id)
again = verification_code_issue(device=device, actor=actor)
audited = AuditEvent.objects.filter(tenant=tenant, action="verification_code.issue").count()
print(len(issued) == waiting > 0, audited == waiting + 1)
print(verification_code_check(mac_or_device=device.mac, code=issued[0].code, source="192.0.2.1").outcome)
print(verification_code_check(mac_or_device=device.mac, code=again.code, source="192.0.2.1").outcome)
"""
    shell = django_shell(demo, code)
    out, err = shell.communicate(timeout=120)
    assert shell.returncode == 0, err
    assert out.split() == ["True", "True", "wrong", "enrolled"]


def test_processes_writing_at_once_wait_their_turn_on_sqlite(demo, tmp_path):
    """`make run` runs web, three workers, beat and the SIP edge on one SQLite file: a transaction
    that reads and then writes must wait for another writer, not fail."""
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{n}" for n in range(4)]
    shells = [django_shell(demo, ISSUE_CODES.format(rounds=5, ready=path, go=go)) for path in ready]
    deadline = time.monotonic() + 60
    while not all(path.exists() for path in ready) and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()
    for shell in shells:
        out, err = shell.communicate(timeout=180)
        assert shell.returncode == 0, err[-3000:]
        assert len(out.split()) == 5


def test_imported_devices_page_in_order_with_the_others_on_sqlite(demo):
    """Devices written by an import and by the ORM share one timestamp format, so keyset pages
    over creation time see each device once."""
    code = """
from devices.selectors import device_list, sort_ordering
from devices.services import device_onboard, devices_import_csv
from portal.models import Tenant
from portal.pagination import keyset_page
from portal.services import Actor
tenant = Tenant.objects.get(name="Contoso (demo)")
actor = Actor.system("smoke")
rows = "".join(f"02-5E-00-00-00-{n:02X},Smoke\\n" for n in range(5))
job = devices_import_csv(tenant=tenant, actor=actor, file_name="smoke.csv", data=("MAC id,Location\\n" + rows).encode())
for n in range(3):
    device_onboard(tenant=tenant, actor=actor, mac=f"02-5E-00-00-01-{n:02X}", location="Smoke")
total = device_list(tenant=tenant).count()
for sort in ("created", "-created"):
    seen, cursor = [], None
    while len(seen) <= total:
        page = keyset_page(device_list(tenant=tenant), ordering=sort_ordering(sort), cursor=cursor, page_size=7)
        seen += [device.pk for device in page.items]
        if not (cursor := page.next_cursor):
            break
    print(job.status, job.created_count, sort, len(seen) == len(set(seen)) == total)
"""
    shell = django_shell(demo, code)
    out, err = shell.communicate(timeout=120)
    assert shell.returncode == 0, err
    assert out.splitlines() == ["done 5 created True", "done 5 -created True"]


def test_the_hourly_policy_sync_stores_times_as_the_orm_does_on_sqlite(demo):
    code = """
from django.db import connection
from devices.models import DeviceCommand
from policies.services import policy_sync_fan_out
queued = policy_sync_fan_out()
with connection.cursor() as cursor:
    cursor.execute("SELECT COUNT(*) FROM devices_devicecommand WHERE created_at LIKE '%+%' OR updated_at LIKE '%+%'")
    print(queued > 0, queued == DeviceCommand.objects.filter(kind="policy_sync").count(), cursor.fetchone()[0])
"""
    shell = django_shell(demo, code)
    out, err = shell.communicate(timeout=120)
    assert shell.returncode == 0, err
    assert out.split() == ["True", "True", "0"]


def test_every_beat_task_runs_on_sqlite(demo):
    """What `make run`'s beat sends, run in the worker's way (the task's own code, in-process)."""
    code = """
from django.conf import settings
from portal.celery import app
app.loader.import_default_modules()  # the tasks modules, as a worker imports them
for entry in settings.CELERY_BEAT_SCHEDULE.values():
    app.tasks[entry["task"]].apply(throw=True)
    print("ran", entry["task"])
"""
    shell = django_shell(demo, code)
    out, err = shell.communicate(timeout=300)
    assert shell.returncode == 0, err[-3000:]
    assert out.split().count("ran") == len(settings.CELERY_BEAT_SCHEDULE)
