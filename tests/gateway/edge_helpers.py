"""The SIP edge for tests: in this process on its own event loop thread (fast, on the test
database through its own connections, so tests commit their data), or as the real
`manage.py run_sip_edge` subprocess; SIPp scenarios that play the phone against it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from gateway.edge import SipEdge, run
from gateway.sip.transaction import Timers
from tests.gateway.sip.sipp import Sipp, free_port
from tests.workers import ROOT, test_database_url

SCENARIOS = Path(__file__).parent / "scenarios"
FAST = Timers.scaled(0.05)  # Timer F = 3.2 s: a lost packet still shows, a test stays short


class EdgeThread:
    """``with EdgeThread() as edge: ... edge.address``: a SipEdge serving on a loop in a thread."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("port", 0)
        kwargs.setdefault("timers", FAST)
        self.edge = SipEdge(**kwargs)
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="sip-edge", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        return self.edge.address

    @property
    def target(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    def _main(self) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            task = asyncio.create_task(run(self.edge, stop=self._stop, stats_every=3600))
            while self.edge.endpoint._udp is None and not task.done():
                await asyncio.sleep(0.005)
            self._ready.set()
            await task

        try:
            asyncio.run(serve())
        except BaseException as exc:  # surfaced by start()/stop()
            self._failure = exc
            self._ready.set()

    def start(self) -> EdgeThread:
        self._thread.start()
        self._ready.wait(10)
        if self._failure is not None:
            raise self._failure
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
        if self._failure is not None:
            raise self._failure

    def call(self, fn, *args):
        """Run ``fn(*args)`` on the edge's loop and wait for it (e.g. to read its state safely)."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(_wrap(fn, *args), self._loop).result(10)

    def __enter__(self) -> EdgeThread:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


async def _wrap(fn, *args):
    result = fn(*args)
    return await result if asyncio.iscoroutine(result) else result


def phone(
    scenario: str,
    *,
    edge: str,
    workdir: Path,
    user: str,
    dial: str | None = None,
    transport: str = "udp",
    keys: dict[str, str] | None = None,
    linger_ms: int = 300,
    extra: tuple[str, ...] = (),
) -> Sipp:
    """SIPp as a phone (UAC) running ``scenario`` once against ``edge`` (host:port)."""
    args = ["-key", "user", user]
    for key, value in (keys or {}).items():
        args += ["-key", key, value]
    if dial is not None:
        args += ["-s", dial]
    return Sipp(
        str(SCENARIOS / scenario),
        workdir=workdir,
        transport=transport,
        linger_ms=linger_ms,
        extra=(*args, *extra, edge),
    )


class EdgeProcess:
    """The real command, `manage.py run_sip_edge`, on the test database."""

    def __init__(self, *, extra_env: dict | None = None, args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.log_path = ROOT / "var" / f"test-edge-{os.getpid()}-{self.port}.log"
        self.extra_env = extra_env or {}
        self.args = args
        self.process: subprocess.Popen | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> EdgeProcess:
        from django.conf import settings

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "SIP_T1": "0.05",
            **self.extra_env,
        }
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "run_sip_edge", "--host", "127.0.0.1", "--port", str(self.port),
                 "--transport", "udp,tcp", *self.args],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while b"SIP edge listening" not in self.log_path.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"run_sip_edge did not start:\n{self.log()}")
            time.sleep(0.05)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    def terminate(self, timeout: float = 15) -> int:
        """SIGTERM, as systemd or Kubernetes stop it; the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> EdgeProcess:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
        if self.log_path.exists():
            self.log_path.unlink()
