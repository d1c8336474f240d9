"""A second, independent phone: baresip (Debian's `baresip-core`), run headless and driven over its
ctrl_tcp interface, registers with the real `manage.py run_sip_edge` and dials `*55*<code>`."""

import json
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from devices.choices import CommandKind, CommandStatus, DeviceState
from devices.models import DeviceCommand
from enrollment.models import PairingRequest, VerificationCode
from enrollment.services import verification_code_issue
from portal.services import Actor
from tests.factories import DeviceFactory, TenantFactory, device_model
from tests.gateway.sip.sipp import free_port
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.sipp,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("catalog"),
]
SIGN_IN = "*70*"  # the settings' default, which the edge process reads too

INSTALL_HINT = "baresip is not installed: `apt-get install -y baresip-core` (CI installs it)"


def _ports() -> tuple[int, int]:
    """A SIP port whose next port is free too (baresip listens for TLS there), and a control port."""
    for _ in range(50):
        sip, ctrl = free_port(), free_port()
        if ctrl in (sip, sip + 1):
            continue
        with socket.socket() as tls:
            try:
                tls.bind(("127.0.0.1", sip + 1))
            except OSError:
                continue
        return sip, ctrl
    raise RuntimeError("no free ports for baresip")


class Baresip:
    """``with Baresip(workdir=..., user=<MAC>, registrar="127.0.0.1:5060") as phone: phone.command("dial", "*55*…")``

    Only what a headless run needs: G.711, the aubridge audio device (no sound card), the menu
    commands, and ctrl_tcp, whose netstring-framed JSON carries our commands and its events."""

    def __init__(self, *, workdir: Path, user: str, registrar: str, transport: str = "udp") -> None:
        binary = shutil.which("baresip")
        if binary is None:
            raise RuntimeError(INSTALL_HINT)
        self.binary = binary
        self.config_dir = workdir / "baresip"
        self.config_dir.mkdir(exist_ok=True)
        self.sip_port, self.ctrl_port = _ports()
        self.log_path = workdir / "baresip.log"
        (self.config_dir / "config").write_text(
            f"""poll_method epoll
sip_listen 127.0.0.1:{self.sip_port}
call_local_timeout 10
audio_player aubridge,nil
audio_source aubridge,nil
audio_alert aubridge,nil
module_path /usr/lib/baresip/modules
module g711.so
module aubridge.so
module_tmp account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}
"""
        )
        (self.config_dir / "accounts").write_text(
            f"<sip:{user}@{registrar};transport={transport}>;regint=600;answermode=manual;audio_codecs=pcmu;mwi=no\n"
        )
        self.process: subprocess.Popen | None = None
        self.events: list[dict] = []
        self._ctrl: socket.socket | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> "Baresip":
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [self.binary, "-f", str(self.config_dir), "-s"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 10
        while self._ctrl is None:
            try:
                self._ctrl = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"baresip did not start:\n{self.log()}") from None
                time.sleep(0.05)
        self._ctrl.settimeout(None)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                data = self._ctrl.recv(65536)
            except OSError:
                return
            if not data:
                return
            buffer += data
            while b":" in buffer:  # netstrings: <length>:<json>,
                length, _, rest = buffer.partition(b":")
                if len(rest) < int(length) + 1:
                    break
                self.events.append(json.loads(rest[: int(length)]))
                buffer = rest[int(length) + 1 :]

    def command(self, command: str, params: str = "") -> None:
        payload = json.dumps({"command": command, "params": params, "token": command}).encode()
        self._ctrl.sendall(b"%d:%s," % (len(payload), payload))

    def wait_event(self, kind: str, timeout: float = 10) -> dict:
        return wait_until(
            lambda: next((event for event in self.events if event.get("type") == kind), None),
            what=f"baresip's {kind} event",
            timeout=timeout,
            details=lambda: f"{self.events}\n{self.log()}",
        )

    def count(self, kind: str) -> int:
        return sum(event.get("type") == kind for event in self.events)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self._ctrl is not None:
            self._ctrl.close()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "Baresip":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_baresip_registers_enrolls_with_star_55_and_is_shown_the_sign_in_code(edge, worker, tmp_path, transport):
    device = DeviceFactory(tenant=TenantFactory(), model=device_model("Yealink", "T54W"))
    code = verification_code_issue(device=device, actor=Actor.system("test")).code
    with Baresip(workdir=tmp_path, user=device.sip_user, registrar=edge.target, transport=transport) as phone:
        # Read from the database, not from baresip's REGISTER_OK: it may come before we are listening.
        wait_until(lambda: device.refresh_from_db() or device.online, what="the registration", details=phone.log)
        assert device.transport == transport
        assert device.user_agent.startswith("baresip")
        # baresip binds another user in its Contact than the MAC it registers (user-0x...@host:port).
        assert device.contact_uri.startswith(f"sip:{device.sip_user}-")

        phone.command("dial", f"*55*{code}")
        established = phone.wait_event("CALL_ESTABLISHED")
        assert established["peeruri"].startswith(f"sip:*55*{code}@")
        assert phone.wait_event("CALL_CLOSED")["id"] == established["id"]  # the edge hung up
        device.refresh_from_db()
        assert device.state == DeviceState.WAITING_FOR_SIGN_IN
        assert VerificationCode.objects.get(device=device).used_at is not None

        # The check-sync reaches baresip through the edge, and baresip answers it: with 481, as it
        # keeps no subscription for check-sync (a desk phone says 200), so the command ends rejected.
        resync = DeviceCommand.objects.filter(device=device, kind=CommandKind.RESYNC)
        command = wait_until(
            lambda: resync.exclude(sip_status=None).first(), what="baresip's answer", details=phone.log
        )
        assert (command.status, command.sip_status) == (CommandStatus.REJECTED, 481)

        # The Sign-in key's number: the call is answered and ended, then the code goes out in a
        # MESSAGE that baresip accepts (it has no screen to show it on).
        phone.command("dial", SIGN_IN)
        wait_until(lambda: phone.count("CALL_CLOSED") == 2, what="the Sign-in call to end", details=phone.log)
        assert phone.count("CALL_ESTABLISHED") == 2
        assert PairingRequest.objects.get(device=device).status == "pending"
        delivered = rf"MESSAGE to sip:{device.sip_user}-\S+: 200 OK"
        wait_until(lambda: re.search(delivered, edge.log_path.read_text()), what="the MESSAGE", details=phone.log)
