"""Pairing and sign-out reach the phone: a real Celery worker sends the check-sync to a real SIP
peer (SIPp playing a Yealink)."""

import pytest
from django.test import Client

from devices.choices import CommandKind, CommandStatus, DeviceState
from devices.models import DeviceCommand
from enrollment.services import pairing_request_start
from portal.services import Actor
from tests.conftest import login
from tests.factories import DeviceFactory, device_model, registered
from tests.gateway.sip.sipp import Sipp
from tests.waiting import wait_until

pytestmark = [pytest.mark.sipp, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_for_resync(device, count: int, worker, timeout: float = 20) -> list[DeviceCommand]:
    def final_resyncs() -> list[DeviceCommand] | None:
        commands = list(DeviceCommand.objects.filter(device=device, kind=CommandKind.RESYNC).order_by("id"))
        return commands if len(commands) == count and all(c.is_final for c in commands) else None

    return wait_until(final_resyncs, what=f"{count} final resync commands", timeout=timeout, details=worker.log)


def test_the_phone_gets_a_check_sync_when_its_user_pairs_and_when_signed_out(admin_a, user_a, celery_worker, tmp_path):
    with Sipp("phone_any_check_sync.xml", workdir=tmp_path, calls=2) as sipp:
        device = DeviceFactory(
            tenant=admin_a.tenant, model=device_model("Yealink", "T54W"), state=DeviceState.WAITING_FOR_SIGN_IN
        )
        registered(device, contact=f"sip:{device.sip_user}@127.0.0.1:{sipp.port}")
        code = pairing_request_start(device=device, actor=Actor.phone(device.mac)).user_code

        assert login(Client(), user_a).post("/pair/", {"code": code}).status_code == 302
        (first,) = wait_for_resync(device, 1, celery_worker)
        assert (first.status, first.sip_status, first.event) == (CommandStatus.SENT, 200, "check-sync;reboot=false")

        response = admin_a.api.post(f"/api/v1/devices/{device.pk}/sign-out/")
        assert response.status_code == 200 and response.json()["state"] == "waiting_for_sign_in"
        _, second = wait_for_resync(device, 2, celery_worker)
        assert second.status == CommandStatus.SENT
        assert sipp.wait() == 0, sipp.report()
    assert sipp.received("NOTIFY") >= 2
