"""Run SIPp (Debian's sip-tester) as a fake phone (UAS) on 127.0.0.1, and always stop it."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

SCENARIOS = Path(__file__).parent / "scenarios"
INSTALL_HINT = "SIPp is not installed: `apt-get install -y sip-tester` (CI installs it; these tests need a real peer)"


def sipp_path() -> str | None:
    return shutil.which("sipp")


def free_port() -> int:
    """A port free for both UDP and TCP on loopback (SIPp binds the one it is given)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def _listening(port: int, transport: str) -> bool:
    """Read the kernel's socket table: cheaper and quieter than probing SIPp with packets."""
    table = Path("/proc/net/udp" if transport == "udp" else "/proc/net/tcp").read_text()
    for line in table.splitlines()[1:]:
        fields = line.split()
        local, state = fields[1], fields[3]
        if int(local.rsplit(":", 1)[1], 16) == port and (transport == "udp" or state == "0A"):
            return True
    return False


class Sipp:
    """``with Sipp("phone_poly_check_sync.xml", workdir=tmp_path) as phone: ...``"""

    def __init__(
        self,
        scenario: str,
        *,
        workdir: Path,
        transport: str = "udp",
        calls: int = 1,
        linger_ms: int = 200,
        trace: bool = True,
        extra: tuple[str, ...] = (),
    ) -> None:
        binary = sipp_path()
        if binary is None:
            raise RuntimeError(INSTALL_HINT)
        self.port = free_port()
        self.transport = transport
        self.workdir = workdir
        self.errors_path = workdir / f"sipp-{self.port}-errors.log"
        self.messages_path = workdir / f"sipp-{self.port}-messages.log"
        self.output_path = workdir / f"sipp-{self.port}.out"
        self.command = [
            binary,
            "-sf", str(SCENARIOS / scenario),
            "-i", "127.0.0.1",
            "-p", str(self.port),
            "-t", "u1" if transport == "udp" else "t1",
            "-m", str(calls),
            "-d", str(linger_ms),  # duration of the scenarios' bare <pause/>
            "-nostdin",
            "-timeout", "60s",  # a hard stop, should a test forget it
            "-trace_err", "-error_file", str(self.errors_path),
            *(("-trace_msg", "-message_file", str(self.messages_path)) if trace else ()),
            *extra,
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def start(self) -> Sipp:
        with self.output_path.open("wb") as out:
            self.process = subprocess.Popen(
                self.command, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 10
        while not _listening(self.port, self.transport):
            if self.process.poll() is not None:
                raise RuntimeError(f"SIPp exited early ({self.process.returncode}):\n{self.report()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"SIPp did not listen on {self.port}:\n{self.report()}")
            time.sleep(0.02)
        return self

    def wait(self, timeout: float = 15) -> int:
        """SIPp's exit code: 0 when every call passed its scenario (Event checks included)."""
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def report(self) -> str:
        parts = []
        for path in (self.errors_path, self.output_path):
            if path.exists():
                parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)

    def received(self, method: str = "NOTIFY") -> int:
        """How many copies of ``method`` SIPp received, from its message trace."""
        if not self.messages_path.exists():
            return 0
        text = self.messages_path.read_text(errors="replace")
        return re.findall(r"message received \[\d+\] bytes :\s+(\S+)", text).count(method)

    def __enter__(self) -> Sipp:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
