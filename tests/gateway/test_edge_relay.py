"""NOTIFYs for a phone behind NAT leave from the edge that holds its registration: the worker's
send hands them to that edge over Redis, and sends them itself when no live edge holds the phone."""

import json
import socket
import threading
import time

import pytest

from devices.choices import CommandKind, CommandStatus
from devices.models import Device
from devices.services import device_commands_request
from gateway import relay
from gateway.services import device_commands_send
from gateway.sip.message import Request, make_response
from gateway.sip.parser import parse_message
from portal.services import Actor
from tests.factories import DeviceFactory, device_model
from tests.gateway.edge_helpers import EdgeThread
from tests.gateway.test_edge import register_bytes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("catalog", "own_cache_keys")]


@pytest.fixture(autouse=True)
def short_sip_timers(settings):
    """The worker's own sends give up at Timer F = 64·T1 = 1.28 s, not 32 s."""
    settings.SIP_T1 = 0.02


class NattedPhone:
    """A phone behind NAT: registers with a private Contact and answers only packets that come
    from the address it registered with, as a NAT binding does."""

    def __init__(self, *, only_from: tuple[str, int] | None, answer_after: threading.Event | None = None) -> None:
        self.notified = threading.Event()  # set at the first NOTIFY
        self.answer_after = answer_after  # answers only once that is set (or 5 s have passed)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.only_from = only_from
        self.notifies: list[tuple[tuple[str, int], Request]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def register(self, user: str, edge: tuple[str, int]) -> bytes:
        private = register_bytes(user, self.port).replace(f"127.0.0.1:{self.port}>".encode(), b"10.255.255.1:5060>")
        self.sock.sendto(private, edge)
        self.sock.settimeout(3)
        answer = self.sock.recv(65536)
        self.sock.settimeout(0.2)
        return answer

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, source = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            message = parse_message(data)
            if isinstance(message, Request) and message.method == "NOTIFY":
                self.notifies.append((source, message))
                self.notified.set()
                if self.answer_after is not None:
                    self.answer_after.wait(timeout=5)
                if self.only_from is None or source == self.only_from:
                    self.sock.sendto(make_response(message, 200, to_tag="ph").to_bytes(), source)

    def __enter__(self):
        return self

    def listen(self):
        self._thread.start()

    def __exit__(self, *exc_info):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.sock.close()


def test_the_notify_for_a_phone_behind_nat_leaves_from_the_edge_it_registered_with(tenant_a):
    device = DeviceFactory(tenant=tenant_a, model=device_model("Yealink", "T54W"))
    with EdgeThread(relay=relay.client()) as edge, NattedPhone(only_from=edge.address) as phone:
        assert phone.register(device.sip_user, edge.address).startswith(b"SIP/2.0 200 OK")
        phone.listen()
        (command,) = device_commands_request(
            tenant=tenant_a, actor=Actor.system("test"), kind=CommandKind.RESYNC, ids=[device.pk]
        )
        assert device_commands_send(command_ids=[command.pk]) == []
        assert edge.edge.relay.jobs == 1

    command.refresh_from_db()
    assert command.status == CommandStatus.SENT
    (source, notify), *_ = phone.notifies
    assert source == edge.address  # the path the phone opened, not a worker's random port
    assert notify.uri == f"sip:{device.sip_user}@10.255.255.1:5060"
    assert notify.headers.get("Event") == "check-sync;reboot=false"


def test_with_no_live_edge_holding_the_phone_the_worker_sends_the_notify_itself(tenant_a):
    device = DeviceFactory(tenant=tenant_a, model=device_model("Yealink", "T54W"))
    with EdgeThread(relay=relay.client()) as edge, NattedPhone(only_from=None) as phone:
        assert phone.register(device.sip_user, edge.address).startswith(b"SIP/2.0 200 OK")
    # The edge has stopped: its alive mark is gone, though the binding note still names it.
    assert relay.client().get(relay._binding(device.pk)) == edge.edge.instance.encode()
    with NattedPhone(only_from=None) as phone:
        Device.objects.filter(pk=device.pk).update(source_address=f"127.0.0.1:{phone.port}")
        phone.listen()
        (command,) = device_commands_request(
            tenant=tenant_a, actor=Actor.system("test"), kind=CommandKind.RESYNC, ids=[device.pk]
        )
        assert device_commands_send(command_ids=[command.pk]) == []
    command.refresh_from_db()
    assert command.status == CommandStatus.SENT
    (source, _), *_ = phone.notifies
    assert source != edge.address


def test_the_edges_of_one_batch_send_at_the_same_time(tenant_a, settings):
    """Each phone answers only once the other has its NOTIFY: were the edges asked one after the
    other, the first phone would wait for the second, and the first edge would time out on it."""
    first, second = (DeviceFactory(tenant=tenant_a, model=device_model("Yealink", "T54W")) for _ in range(2))
    with (
        EdgeThread(relay=relay.client()) as edge_1,
        EdgeThread(relay=relay.client()) as edge_2,
        NattedPhone(only_from=edge_1.address) as phone_1,
        NattedPhone(only_from=edge_2.address) as phone_2,
    ):
        phone_1.answer_after, phone_2.answer_after = phone_2.notified, phone_1.notified
        assert phone_1.register(first.sip_user, edge_1.address).startswith(b"SIP/2.0 200 OK")
        assert phone_2.register(second.sip_user, edge_2.address).startswith(b"SIP/2.0 200 OK")
        phone_1.listen()
        phone_2.listen()
        commands = device_commands_request(
            tenant=tenant_a, actor=Actor.system("test"), kind=CommandKind.RESYNC, ids=[first.pk, second.pk]
        )
        assert device_commands_send(command_ids=[c.pk for c in commands]) == []
        assert (edge_1.edge.relay.jobs, edge_2.edge.relay.jobs) == (1, 1)

    for command in commands:
        command.refresh_from_db()
        assert command.status == CommandStatus.SENT, command.reason
    assert phone_1.notifies[0][0] == edge_1.address and phone_2.notifies[0][0] == edge_2.address


def test_a_job_an_edge_takes_after_the_accept_wait_is_awaited_not_sent_twice():
    r = relay.client()
    target = relay.NotifyTarget(7, "sip:0015650a0001@10.0.0.9:5060", "udp", ("127.0.0.1", 5060))
    job = relay._EdgeJob.post("late-edge", [target], lambda t: "check-sync", concurrency=1)
    assert r.blpop([relay._inbox("late-edge")], 1)[1].decode() == job.payload  # the edge takes it...
    job.accept_by = 0  # ...when the worker has stopped waiting for it to

    def answer_late():
        time.sleep(0.2)
        r.rpush(job.reply, json.dumps({"accepted": True}))
        r.rpush(job.reply, json.dumps({"outcomes": [[7, 200, "OK", "sent", False, 0]]}))

    threading.Thread(target=answer_late).start()
    (outcome,) = job.outcomes(deadline=time.monotonic() + 2).values()
    assert (outcome.key, outcome.status, outcome.outcome) == (7, 200, "sent")
