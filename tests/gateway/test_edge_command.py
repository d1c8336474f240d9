"""`manage.py run_sip_edge` itself, as a process on the test database, with SIPp as the phone:
it serves UDP and TCP, writes bindings where every other process reads them, survives garbage,
and stops cleanly on SIGTERM."""

import socket

import pytest

from devices.choices import CommandKind, DeviceState
from devices.models import DeviceCommand
from enrollment.services import verification_code_issue
from portal.services import Actor
from tests.factories import DeviceFactory, device_model
from tests.gateway.edge_helpers import EdgeProcess, phone

pytestmark = [pytest.mark.sipp, pytest.mark.django_db(transaction=True)]


def run(sipp) -> None:
    with sipp:
        assert sipp.wait(20) == 0, sipp.report()


def test_the_command_registers_phones_over_udp_and_tcp_enrolls_one_and_stops_on_sigterm(tenant_a, tmp_path):
    yealink, poly = (
        DeviceFactory(tenant=tenant_a, model=device_model("Yealink", "T54W")),
        DeviceFactory(tenant=tenant_a, model=device_model("Poly", "VVX 450")),
    )
    code = verification_code_issue(device=yealink, actor=Actor.system("test")).code
    with EdgeProcess() as edge:
        run(phone("edge_register.xml", edge=edge.target, workdir=tmp_path, user=yealink.sip_user,
                  keys={"expires": "600"}))  # fmt: skip
        run(phone("edge_register.xml", edge=edge.target, workdir=tmp_path, user=poly.sip_user,
                  keys={"expires": "600"}, transport="tcp"))  # fmt: skip
        # Garbage first: the edge must still answer the call after it.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:
            for datagram in (b"\x00" * 20, b"NOTIFY nonsense\r\n\r\n", bytes(range(256)) * 200):
                junk.sendto(datagram, ("127.0.0.1", edge.port))
        run(phone("edge_call_answered.xml", edge=edge.target, workdir=tmp_path, user=yealink.sip_user,
                  dial=f"*55*{code}"))  # fmt: skip
        assert edge.terminate() == 0, edge.log()
        log = edge.log()

    yealink.refresh_from_db()
    poly.refresh_from_db()
    assert (yealink.transport, poly.transport) == ("udp", "tcp")
    assert yealink.online and poly.online
    assert yealink.state == DeviceState.WAITING_FOR_SIGN_IN
    assert DeviceCommand.objects.filter(device=yealink, kind=CommandKind.RESYNC).exists()
    assert "SIP edge stopped" in log
    assert "Traceback" not in log


def test_the_command_refuses_a_transport_it_does_not_serve():
    edge = EdgeProcess(args=("--transport", "tcp"))
    try:
        with pytest.raises(RuntimeError, match="UDP is always served"):
            edge.start()
    finally:
        edge.log_path.unlink(missing_ok=True)
