"""End to end: a policy change reaches a fleet of phones (SIPp) through a real Celery worker and beat,
and the phones' config fetches bring them in sync, after which beat leaves them alone."""

import re
import time

import pytest
from django.test import Client

from devices.choices import CommandKind, CommandStatus, DeviceState
from devices.models import Device, DeviceCommand
from policies.services import policy_defaults_ensure
from tests.factories import DeviceFactory, MembershipFactory, device_model, registered
from tests.gateway.sip.sipp import Sipp
from tests.waiting import wait_until
from tests.workers import running_worker

pytestmark = [
    pytest.mark.sipp,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("own_cache_keys"),
]

FLEET = 12
BEAT_SECONDS = 2


def notified_users(sipp: Sipp) -> set[str]:
    """The SIP users of the Request-URIs of the NOTIFYs SIPp received."""
    text = sipp.messages_path.read_text(errors="replace") if sipp.messages_path.exists() else ""
    return set(re.findall(r"^NOTIFY sip:([0-9A-Fa-f]{12})@", text, re.M))


def test_a_new_default_reaches_every_phone_through_the_worker_and_their_fetches_bring_them_in_sync(
    admin_a, tenant_a, tmp_path
):
    defaults = policy_defaults_ensure(tenant=tenant_a)
    model = device_model("Yealink", "T54W")
    # Room for a second round should a tick fall between the NOTIFYs and the fetches.
    with Sipp("phone_any_check_sync.xml", workdir=tmp_path, calls=FLEET * 3, linger_ms=1000) as sipp:
        devices = []
        for _ in range(FLEET):
            user = MembershipFactory(tenant=tenant_a, role="user").user
            device = DeviceFactory(
                tenant=tenant_a,
                model=model,
                state=DeviceState.SIGNED_IN,
                signed_in_user=user,
                wanted_version=1,
                synced_version=1,
            )
            devices.append(registered(device, contact=f"sip:{device.sip_user}@127.0.0.1:{sipp.port}"))
        worker_env = {"POLICY_SYNC_SECONDS": str(BEAT_SECONDS), "SIP_T1": "0.1"}
        with running_worker(extra_env=worker_env, beat=True) as worker:
            response = admin_a.api.patch(
                f"/api/v1/policies/{defaults['ip_phone'].pk}/", {"settings": {"language": "es"}}, format="json"
            )
            assert response.status_code == 200
            assert set(Device.objects.filter(tenant=tenant_a).values_list("wanted_version", flat=True)) == {2}

            syncs = DeviceCommand.objects.filter(kind=CommandKind.POLICY_SYNC, device__in=devices)
            wait_until(
                lambda: syncs.filter(status=CommandStatus.SENT).values("device").distinct().count() == FLEET,
                what="a check-sync sent to every phone",
                timeout=BEAT_SECONDS + 20,
                details=worker.log,
            )
            assert notified_users(sipp) == {d.sip_user for d in devices}

            # Each phone does what check-sync asks: fetch its config.
            phone = Client()
            for device in devices:
                body = phone.get(
                    f"/provision/{tenant_a.provisioning_key}/{device.sip_user.lower()}.cfg", REMOTE_ADDR="192.0.2.20"
                ).content.decode()
                assert "lang.gui = Spanish" in body and "config version 2" in body
            assert set(Device.objects.filter(tenant=tenant_a).values_list("synced_version", flat=True)) == {2}

            wait_until(
                lambda: not syncs.filter(status__in=["queued", "sending"]).exists(),
                what="every check-sync final",
                timeout=20,
                details=worker.log,
            )
            asked = syncs.count()
            time.sleep(BEAT_SECONDS * 2 + 1)  # two more ticks: phones in sync are not asked again
            assert syncs.count() == asked
