"""A real Celery worker process for the tests whose behaviour lives in tasks.

It runs `celery -A portal worker` against the same Redis broker and the same *test* database as
the test process, so tests that use it must commit their data: `django_db(transaction=True)`."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"] != "django.db.backends.postgresql":
        raise RuntimeError("worker tests run on PostgreSQL (make test sets DATABASE_URL)")
    user = db["USER"] or "postgres"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


LANES = (settings.CELERY_TASK_DEFAULT_QUEUE, settings.COMMANDS_QUEUE, settings.SYNC_QUEUE)


def purge_broker() -> None:
    """Drop what earlier tests of this run left in the run's own queues (never other runs')."""
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(*LANES)


class CeleryWorker:
    def __init__(
        self, *, concurrency: int = 2, extra_env: dict | None = None, beat: bool = False, queues: tuple = LANES
    ):
        self.concurrency = concurrency
        self.queues = queues
        self.beat = beat
        self.schedule_path = ROOT / "var" / f"test-beat-{os.getpid()}-{time.monotonic_ns()}"
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None
        self.log_start = 0
        self.log_path = ROOT / "var" / f"test-worker-{os.getpid()}.log"

    def start(self) -> "CeleryWorker":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "DATABASE_CONN_MAX_AGE": "0",
            **self.extra_env,
        }
        log = self.log_path.open("ab")
        # The file may hold an earlier worker's lines (same test process): read only this one's.
        self.log_start = log.tell()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "portal", "worker", "--loglevel=INFO",
             "--pool=threads", f"--concurrency={self.concurrency}", f"--queues={','.join(self.queues)}",
             "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-n", f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
             # A fresh schedule file each time: an old one would make every entry due at once.
             *(["--beat", f"--schedule={self.schedule_path}"] if self.beat else [])],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.log()}")
            if b"ready." in self.log_path.read_bytes()[self.log_start :]:
                return
            time.sleep(0.1)
        raise RuntimeError(f"celery worker not ready after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_bytes()[self.log_start :].decode(errors="replace")[-5000:]

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no graceful shutdown, unacked tasks stay queued."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        self._stop()
        for path in self.schedule_path.parent.glob(f"{self.schedule_path.name}*"):
            path.unlink()

    def _stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def running_worker(**options) -> Iterator[CeleryWorker]:
    """A worker on an empty queue for the block (options as CeleryWorker's); its log goes with it."""
    purge_broker()
    worker = CeleryWorker(**options).start()
    try:
        yield worker
    finally:
        worker.stop()
        worker.log_path.unlink(missing_ok=True)
