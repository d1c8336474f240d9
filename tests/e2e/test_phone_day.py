"""A phone's whole day, end to end, for each vendor family, over UDP and over TCP.

Everything is real: the `manage.py run_sip_edge` process, a Celery worker that sends the NOTIFYs
(handed over Redis to the edge that holds the phone's registration), the provisioning server
(`live_server`) fetched over HTTP with the vendor's User-Agent, and SIPp playing the phone on one
local port all day (tests/e2e/scenarios/phone_day.xml). The test plays the user: it reads the
config as the phone would, presses the phone's keys (an INFO to SIPp, see the scenario), and
pairs with the code the phone shows, on the pairing page."""

import re
import socket
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import pytest
from django.test import Client

from devices.choices import CommandKind, CommandStatus, DeviceState
from devices.models import Device, DeviceCommand, DeviceCommandAttempt
from enrollment.models import PairingRequest, VerificationCode
from enrollment.services import verification_code_issue
from portal.choices import Role
from portal.models import AuditEvent
from portal.services import Actor
from tests.factories import DeviceFactory, MembershipFactory, TenantFactory, UserFactory, device_model
from tests.gateway.edge_helpers import SCENARIOS as EDGE_SCENARIOS
from tests.gateway.sip.sipp import Sipp
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.sipp,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("catalog"),
]

SCENARIOS = Path(__file__).parent / "scenarios"
ADMIN = Actor.system("test")
SIGN_IN, SIGN_OUT = "*70*", "*71*"  # the settings' defaults, which the edge process reads too
STEP_TIMEOUT = 15  # seconds for any one step; each takes well under one


# --- What a phone makes of its config ---------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """A config as the phone reads it: where it registers, as whom, the key it shows, its line's texts."""

    server: tuple[str, int, str]  # host, port, transport
    sip_user: str
    key: tuple[str, str] | None  # (label, number it dials)
    shows: str


def _pairs(text: str) -> dict[str, str]:
    lines = (line.partition("=") for line in text.splitlines() if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, _, value in lines}


def _xml(text: str) -> ET.Element:
    return ET.fromstring(text.encode())


def read_yealink(text: str) -> Config:
    v = _pairs(text)
    server = "account.1.sip_server.1."
    transport = {"0": "udp", "1": "tcp", "2": "tls"}[v[server + "transport_type"]]
    key = (v["programablekey.1.label"], v["programablekey.1.value"]) if v.get("programablekey.1.type") == "13" else None
    shows = [v.get(k, "") for k in ("account.1.label", "account.1.display_name", "features.idle_screen.line_label")]
    return Config(
        (v[server + "address"], int(v[server + "port"]), transport), v["account.1.user_name"], key, " | ".join(shows)
    )


def read_poly(text: str) -> Config:
    a = {name: value for element in _xml(text).iter() for name, value in element.attrib.items()}
    transport = {"UDPOnly": "udp", "TCPOnly": "tcp", "TLS": "tls"}[a["reg.1.server.1.transport"]]
    key = None
    if a.get("softkey.1.enable") == "1":
        key = (a["softkey.1.label"], a["softkey.1.action"].removesuffix("$Tinvite$"))
    shows = [a.get(k, "") for k in ("reg.1.label", "reg.1.displayName", "up.lineKeyLabel")]
    server = (a["reg.1.server.1.address"], int(a["reg.1.server.1.port"]), transport)
    return Config(server, a["reg.1.address"], key, " | ".join(shows))


def read_cisco(text: str) -> Config:
    e = {element.tag: element.text or "" for element in _xml(text)}
    host, _, port = e["Proxy_1_"].rpartition(":")
    key = None
    if "PSK_1" in e:
        psk = dict(part.split("=", 1) for part in e["PSK_1"].split(";"))
        key = (psk["nme"], psk["ext"].removesuffix("@$PROXY"))
    shows = [e.get(k, "") for k in ("Display_Name_1_", "Short_Name_1_", "Station_Display_Name", "Station_Name")]
    return Config((host, int(port), e["SIP_Transport_1_"].lower()), e["User_ID_1_"], key, " | ".join(shows))


def read_audiocodes(text: str) -> Config:
    v = _pairs(text)
    sip, fkey = "voip/signalling/sip/", "personal_settings/functional_key/0/"
    key = (v[fkey + "key_label"], v[fkey + "speed_dial_extension"]) if v.get(fkey + "type") == "SPEED_DIAL" else None
    shows = [
        v.get(k, "")
        for k in ("voip/line/0/description", "voip/line/0/display_name", "personal_settings/idle_screen/line_number")
    ]
    server = (v[sip + "proxy_address"], int(v[sip + "port"]), v[sip + "transport_protocol"].lower())
    return Config(server, v["voip/line/0/id"], key, " | ".join(shows))


def read_snom(text: str) -> Config:
    root = _xml(text)
    s = {element.tag: element.text or "" for element in root.find("phone-settings")}
    host_port, _, transport = s["user_host"].partition(";transport=")
    host, _, port = host_port.rpartition(":")
    fkey = root.find("functionKeys/fkey")
    key = (fkey.get("label"), fkey.text.removeprefix("speed ")) if fkey is not None else None
    return Config((host, int(port), transport), s["user_name"], key, f"{s['user_realname']} | {s['user_idle_text']}")


@dataclass(frozen=True)
class Phone:
    vendor: str
    model: str
    user_agent: str  # {mac}: 12 hex digits, {colons}: with colons
    firmware: str
    config_file: str  # the file it asks for first
    read: Callable[[str], Config]
    resync_event: str  # the Event: it must be sent


PHONES = {
    "yealink": Phone("Yealink", "T54W", "Yealink SIP-T54W 96.86.0.70 {colons}", "96.86.0.70", "{mac}.cfg",
                     read_yealink, "check-sync;reboot=false"),
    # Poly's <mac>.cfg is its master file; the settings are in the file the master names.
    "poly": Phone("Poly", "VVX 450", "PolycomVVX-VVX_450-UA/6.4.3.1234", "6.4.3.1234", "{mac}.cfg",
                  read_poly, "check-sync"),
    # Cisco MPP asks for $PSN.xml and names itself in its User-Agent.
    "cisco": Phone("Cisco", "8841", "Cisco-CP8841-3PCC/11.3.6 ({mac})", "11.3.6", "CP-8841-3PCC.xml",
                   read_cisco, "resync"),
    "audiocodes": Phone("AudioCodes", "C450HD", "AUDC-IPPhone/3.4.4.1000 (C450HD-Rev0; {mac})", "3.4.4.1000",
                        "{mac}.cfg", read_audiocodes, "check-sync;reboot=false"),
    "snom": Phone("Snom", "D735", "Mozilla/4.0 (compatible; snomD735-SIP 10.1.73.16)", "10.1.73.16", "{mac}.xml",
                  read_snom, "check-sync;reboot=false"),
}  # fmt: skip


def user_agent(phone: Phone, device: Device) -> str:
    mac = device.sip_user
    return phone.user_agent.format(mac=mac, colons=":".join(mac[i : i + 2] for i in range(0, 12, 2)))


def fetch(url: str, agent: str) -> str:
    request = urllib.request.Request(url, headers={"User-Agent": agent})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return response.read().decode()


def fetch_config(phone: Phone, device: Device, base_url: str) -> Config:
    """What the phone does at boot and on every check-sync: GET its file(s) with its User-Agent."""
    agent = user_agent(phone, device)
    folder = f"{base_url}/provision/{device.tenant.provisioning_key}/"
    text = fetch(folder + phone.config_file.format(mac=device.sip_user), agent)
    master = re.search(r'<APPLICATION [^>]*CONFIG_FILES="([^"]+)"', text)
    if master:  # Poly: the master file names the files to read next
        text = fetch(folder + master.group(1), agent)
    return phone.read(text)


# --- The phone (SIPp) and the user's finger -------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    method: str
    call_id: str
    via: str
    event: str
    text: str


class Handset:
    """SIPp running phone_day.xml, what it was sent (its log), and its keys."""

    def __init__(self, *, phone: Phone, device: Device, code: str, config: Config, workdir: Path) -> None:
        host, port, self.transport = config.server
        call_ids = f"day-{uuid4().hex[:12]}-"
        self.call_id = f"{call_ids}1"  # SIPp numbers its one call 1
        self.log_path = workdir / "phone-screen.log"
        keys = {
            "user": config.sip_user, "agent": user_agent(phone, device), "enroll": f"*55*{code}",
            "sign_in": SIGN_IN, "sign_out": SIGN_OUT, "expires": "3600",
        }  # fmt: skip
        self.sipp = Sipp(
            str(SCENARIOS / "phone_day.xml"),
            workdir=workdir,
            transport=self.transport,
            extra=(
                "-oocsf", str(SCENARIOS / "phone_screen.xml"),
                "-cid_str", f"{call_ids}%u",
                "-trace_logs", "-log_file", str(self.log_path),
                *[arg for key, value in keys.items() for arg in ("-key", key, value)],
                f"{host}:{port}",
            ),
        )  # fmt: skip
        self._finger: socket.socket | None = None
        self._presses = 0

    @property
    def port(self) -> int:
        return self.sipp.port

    def sent(self, method: str) -> list[Sent]:
        """What the edge sent the phone, once per request (a retransmission is the same request)."""
        seen: dict[str, Sent] = {}
        if self.log_path.exists():
            for line in self.log_path.read_text(errors="replace").splitlines():
                parts = [part.strip() for part in line.split("|", 4)]
                if len(parts) == 5 and parts[0] == method:
                    seen.setdefault(parts[1], Sent(*parts))
        return list(seen.values())

    def press(self, key: str) -> None:
        """A key press: an INFO on the phone's own call, which the scenario waits for."""
        self._presses += 1
        info = (
            f"INFO sip:phone@127.0.0.1:{self.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/{self.transport.upper()} 127.0.0.1:9;branch=z9hG4bK-key-{self._presses}\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:user@127.0.0.1>;tag=finger\r\nTo: <sip:phone@127.0.0.1>\r\n"
            f"Call-ID: {key}///{self.call_id}\r\nCSeq: {self._presses} INFO\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        if self.transport == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as finger:
                finger.sendto(info, ("127.0.0.1", self.port))
            return
        if self._finger is None:  # one connection for the day: a close would read as the phone's
            self._finger = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self._finger.sendall(info)

    def scenario_ended(self) -> str | None:
        """Why waiting on the phone is pointless: it has run its whole scenario (or failed it)."""
        return "the phone's scenario ended" if self.sipp.process.poll() is not None else None

    def __enter__(self) -> "Handset":
        self.sipp.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.sipp.stop()
        if self._finger is not None:
            self._finger.close()


@pytest.fixture
def configured(settings, edge):
    """The provisioning server points phones at the running edge."""
    settings.SIP_EDGE_HOST, settings.SIP_EDGE_PORT = "127.0.0.1", edge.port
    return settings


def wait_for_step(predicate, *, what: str, handset: Handset):
    """The step's outcome, as soon as it shows; fails at once, with the phone's report, if its scenario ended."""
    return wait_until(
        predicate, what=what, timeout=STEP_TIMEOUT, details=handset.sipp.report, give_up=handset.scenario_ended
    )


def spray_garbage(port: int) -> None:
    """What scanners and broken phones send: junk datagrams, a TLS hello, a stream that never ends."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:
        for datagram in (
            b"\x00" * 20,
            b"\x16\x03\x01\x02\x00" + bytes(300),
            b"NOTIFY nonsense\r\n\r\n",
            b"SIP/2.0 200 OK\r\n\r\n",
            bytes(range(256)) * 200,
        ):
            junk.sendto(datagram, ("127.0.0.1", port))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as stream:
        stream.sendall(b"REGISTER sip:x SIP/2.0\r\nContent-Length: 99999999\r\n\r\n" + b"x" * 70_000)
        try:
            while stream.recv(65536):
                pass
        except ConnectionResetError:
            pass  # closed with our bytes unread: a reset rather than a FIN


# --- The day -------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize("vendor", list(PHONES))
def test_a_phone_s_whole_day_from_first_config_to_sign_out(
    vendor, transport, configured, edge, worker, live_server, tmp_path
):
    configured.SIP_EDGE_TRANSPORT = transport
    phone = PHONES[vendor]
    tenant = TenantFactory(name="Contoso")
    device = DeviceFactory(tenant=tenant, model=device_model(phone.vendor, phone.model), display_name="Reception")
    code = verification_code_issue(device=device, actor=ADMIN).code
    ada = UserFactory(first_name="Ada", last_name="Lovelace", phone_number="+14255550100")
    MembershipFactory(tenant=tenant, user=ada, role=Role.USER)

    def reload() -> Device:
        device.refresh_from_db()
        return device

    def commands_sent(count: int):
        sent = DeviceCommand.objects.filter(device=device, status=CommandStatus.SENT)
        return sent.count() == count and list(sent.order_by("id"))

    # 07:58 - the phone boots and asks for its config: the edge, its SIP user, no key to press yet.
    config = fetch_config(phone, device, live_server.url)
    assert config.server == ("127.0.0.1", edge.port, transport)
    assert config.sip_user == device.sip_user
    assert config.key is None
    assert "Reception" in config.shows
    reload()
    assert device.state == DeviceState.WAITING_ON_ACTIVATION
    assert (device.last_provisioned_ip, device.last_provisioned_user_agent) == ("127.0.0.1", user_agent(phone, device))
    assert device.synced_version == device.wanted_version

    with Handset(phone=phone, device=device, code=code, config=config, workdir=tmp_path) as handset:
        # 08:00 - it registers where its config says, then the technician dials *55* and the code.
        wait_for_step(lambda: reload().online, what="the registration", handset=handset)
        assert device.contact_uri == f"sip:{device.sip_user}@127.0.0.1:{handset.port};transport={transport.upper()}"
        assert device.transport == transport
        assert device.source_address == f"127.0.0.1:{handset.port}"
        assert (device.model.vendor, device.model.model, device.firmware) == (phone.vendor, phone.model, phone.firmware)
        spray_garbage(edge.port)  # whatever else reaches the edge meanwhile changes nothing below

        # The call is answered and ended (the scenario checks the inactive SDP and the BYE), then
        # the worker's check-sync reaches the phone through the edge that holds its registration.
        (enrolled,) = wait_for_step(lambda: commands_sent(1), what="the first check-sync", handset=handset)
        assert reload().state == DeviceState.WAITING_FOR_SIGN_IN
        assert VerificationCode.objects.get(device=device).used_at is not None
        assert (enrolled.kind, enrolled.event, enrolled.sip_status) == (CommandKind.RESYNC, phone.resync_event, 200)
        (notify,) = wait_for_step(lambda: handset.sent("NOTIFY"), what="the NOTIFY on the phone", handset=handset)
        assert notify.event == phone.resync_event
        # From the edge's own address: a NOTIFY from a worker's port would not pass the phone's NAT.
        assert f"SIP/2.0/{transport.upper()} 127.0.0.1:{edge.port};" in notify.via

        # It fetches its config: the Sign-in key is there, and the fetch syncs the version.
        config = fetch_config(phone, device, live_server.url)
        assert config.key == ("Sign in", SIGN_IN)
        assert reload().synced_version == device.wanted_version

        # 08:05 - Ada presses Sign-in: the phone shows the pairing URL and a code.
        handset.press("sign-in")
        (message,) = wait_for_step(lambda: handset.sent("MESSAGE"), what="the sign-in MESSAGE", handset=handset)
        shown = re.fullmatch(r"Sign in at (\S+) with code ([BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4})",
                             message.text)  # fmt: skip
        assert shown is not None, message
        url, user_code = shown.groups()
        assert url == f"{live_server.url}/pair/"
        assert PairingRequest.objects.get(device=device).status == "pending"

        # She opens the URL on her laptop, signed in to the portal, and types the code.
        browser = Client()
        browser.force_login(ada)
        page = browser.get(f"/pair/?code={user_code.lower()}")
        assert page.status_code == 200
        assert f'value="{user_code}"' in page.content.decode()
        assert browser.post("/pair/", {"code": user_code}).status_code == 302

        # The phone is told to sync, and its config now shows her name and number and a Sign-out key.
        wait_for_step(lambda: commands_sent(2), what="the check-sync after pairing", handset=handset)
        wait_for_step(lambda: len(handset.sent("NOTIFY")) == 2, what="the second NOTIFY", handset=handset)
        assert reload().state == DeviceState.SIGNED_IN
        assert (device.signed_in_user, device.phone_number) == (ada, "+14255550100")
        config = fetch_config(phone, device, live_server.url)
        assert config.key == ("Sign out", SIGN_OUT)
        assert "Ada Lovelace" in config.shows
        assert "+14255550100" in config.shows

        # 17:30 - she presses Sign-out: the phone is back to waiting for a sign-in, and says so.
        handset.press("sign-out")
        wait_for_step(lambda: commands_sent(3), what="the check-sync after sign-out", handset=handset)
        wait_for_step(lambda: len(handset.sent("NOTIFY")) == 3, what="the third NOTIFY", handset=handset)
        assert reload().state == DeviceState.WAITING_FOR_SIGN_IN
        assert (device.signed_in_user, device.phone_number) == (None, "")
        config = fetch_config(phone, device, live_server.url)
        assert config.key == ("Sign in", SIGN_IN)
        assert "Ada" not in config.shows
        assert "+14255550100" not in config.shows

        # 17:31 - switched off for the night: it removes its binding.
        handset.press("power-off")
        assert handset.sipp.wait(STEP_TIMEOUT) == 0, handset.sipp.report()

    assert not reload().online
    assert device.contact_uri == ""
    commands = DeviceCommand.objects.filter(device=device).order_by("id")
    assert [(c.kind, c.status, c.event) for c in commands] == [
        (CommandKind.RESYNC, CommandStatus.SENT, phone.resync_event)
    ] * 3
    assert all(n.event == phone.resync_event for n in handset.sent("NOTIFY"))
    assert all(f"127.0.0.1:{edge.port};" in n.via for n in handset.sent("NOTIFY"))
    assert DeviceCommandAttempt.objects.filter(command__device=device).count() == 3  # one NOTIFY each
    actions = set(AuditEvent.objects.filter(object_id=device.pk).values_list("action", flat=True))
    assert {"device.enroll", "pairing.start", "device.sign_in", "device.sign_out"} <= actions


# --- What the edge refuses --------------------------------------------------------------------------


def run(sipp: Sipp) -> str:
    with sipp:
        assert sipp.wait(STEP_TIMEOUT) == 0, sipp.report()
    return sipp.messages_path.read_text(errors="replace")


def test_five_wrong_codes_lock_the_phone_out_and_the_right_one_is_then_refused_too(edge, tmp_path):
    tenant = TenantFactory()
    device = DeviceFactory(tenant=tenant, model=device_model("Yealink", "T54W"))
    code = verification_code_issue(device=device, actor=ADMIN).code
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    def dial(number: str, calls: int = 1) -> str:
        # One call at a time (-l 1): the answers come in the order of the attempts.
        extra = ("-key", "user", device.sip_user, "-s", f"*55*{number}", "-l", "1", "-r", "100", edge.target)
        return run(Sipp(str(EDGE_SCENARIOS / "edge_call_refused.xml"), workdir=tmp_path, calls=calls, linger_ms=20,
                        extra=extra))  # fmt: skip

    assert dial(wrong, calls=5).count('Warning: 399 127.0.0.1 "Wrong verification code"') == 5
    assert re.search(r'Warning: 399 127\.0\.0\.1 "Too many wrong codes; try again in 1[45] min"', dial(code))
    device.refresh_from_db()
    assert device.state == DeviceState.WAITING_ON_ACTIVATION
    assert VerificationCode.objects.get(device=device).used_at is None
    assert AuditEvent.objects.filter(action="verification_code.lockout", object_id=device.pk).count() == 1
    assert not DeviceCommand.objects.filter(device=device).exists()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_mac_the_portal_does_not_know_cannot_register_and_is_told_nothing_more(edge, tmp_path, transport):
    neighbour = DeviceFactory(tenant=TenantFactory(), mac="00-15-65-0F-FF-FE")
    # The scenario checks that the 404 carries no Warning: nothing for whoever scans MACs.
    refused = Sipp(str(EDGE_SCENARIOS / "edge_register_refused.xml"), workdir=tmp_path, transport=transport,
                   extra=("-key", "user", "0015650fffff", edge.target))  # fmt: skip
    assert "SIP/2.0 404 Not Found" in run(refused)
    assert not Device.objects.filter(mac="00-15-65-0F-FF-FF").exists()
    neighbour.refresh_from_db()
    assert (neighbour.contact_uri, neighbour.online) == ("", False)
