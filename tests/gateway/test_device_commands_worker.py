"""Restarts through a real Celery worker on Redis, to a real phone (SIPp)."""

import socket
from pathlib import Path

import pytest
from django.conf import settings
from django.db.models import Count, Q

from devices.choices import CommandStatus, DeviceState
from devices.models import Device, DeviceCommand, ImportJob
from policies.services import devices_policy_sync_if_behind
from tests.factories import DeviceFactory, device_model, registered
from tests.gateway.sip.sipp import Sipp
from tests.waiting import wait_until
from tests.workers import CeleryWorker, purge_broker

FLEET_SCENARIO = Path(__file__).parent / "scenarios" / "fleet_delayed_answer.xml"

pytestmark = [pytest.mark.sipp, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_restart_asked_through_the_api_is_sent_by_the_worker(admin_a, celery_worker, tmp_path):
    with Sipp("phone_yealink_reboot.xml", workdir=tmp_path) as sipp:
        device = DeviceFactory(tenant=admin_a.tenant, model=device_model("Yealink", "T54W"))
        registered(device, contact=f"sip:{device.sip_user}@127.0.0.1:{sipp.port}")
        response = admin_a.api.post(f"/api/v1/devices/{device.pk}/restart/")
        assert response.status_code == 202
        url = f"/api/v1/commands/{response.json()['id']}/"
        wait_until(
            lambda: admin_a.api.get(url).json()["final"],
            what="the restart's final status",
            timeout=20,
            details=celery_worker.log,
        )
        assert sipp.wait() == 0, sipp.report()
    assert admin_a.api.get(url).json()["status"] == "sent"


def test_killing_the_worker_mid_fan_out_still_ends_every_command_final_exactly_once(admin_a, tmp_path):
    fleet = 1000
    model = device_model("Yealink", "T54W")
    # Phones answer after 200 ms, a task sends 100 with 20 in flight (~1 s), the worker runs two
    # tasks at a time: the fan-out lasts ~5 s, and statuses land a batch at a time.
    with Sipp(str(FLEET_SCENARIO), workdir=tmp_path, calls=fleet * 3, linger_ms=200, trace=False) as sipp:
        Device.objects.bulk_create(
            [
                Device(
                    tenant=admin_a.tenant,
                    mac=f"00-15-65-{i >> 16 & 255:02X}-{i >> 8 & 255:02X}-{i & 255:02X}",
                    location="Floor",
                    model=model,
                    state=DeviceState.SIGNED_IN,
                )
                for i in range(fleet)
            ]
        )
        for device in Device.objects.filter(tenant=admin_a.tenant):
            registered(device, contact=f"sip:{device.sip_user}@127.0.0.1:{sipp.port}")
        ids = list(Device.objects.filter(tenant=admin_a.tenant).values_list("pk", flat=True))

        env = {
            "SIP_T1": "0.05",
            "SIP_NOTIFY_CONCURRENCY": "20",
            "DEVICE_COMMAND_LEASE_SECONDS": "6",  # well beyond what one batch takes
            "DEVICE_COMMAND_RESUME_SECONDS": "1",  # the beat sweeper that re-enqueues what a dead worker held
        }
        purge_broker()
        first = CeleryWorker(extra_env=env).start()
        try:
            response = admin_a.api.post("/api/v1/devices/restart/", {"ids": ids}, format="json")
            assert response.status_code == 202
            commands = DeviceCommand.objects.filter(tenant=admin_a.tenant, kind="restart")
            wait_until(
                lambda: commands.filter(status=CommandStatus.SENT).exists(), timeout=30, what="first sends"
            )
        finally:
            first.kill()
        unfinished = commands.filter(status__in=[CommandStatus.QUEUED, CommandStatus.SENDING]).count()
        assert unfinished > 0, "the worker finished before it was killed: the test proves nothing"

        second = CeleryWorker(extra_env=env, beat=True).start()
        try:
            wait_until(
                lambda: not commands.filter(status__in=[CommandStatus.QUEUED, CommandStatus.SENDING]).exists(),
                timeout=60,
                what="every command final after the restart",
            )
        finally:
            second.stop()
    assert commands.count() == fleet
    assert commands.filter(status=CommandStatus.SENT).count() == fleet
    # Exactly once: each command has one recorded final attempt, the one that made it `sent`.
    per_command = commands.annotate(sent=Count("attempts", filter=Q(attempts__outcome=CommandStatus.SENT)))
    assert set(per_command.values_list("sent", flat=True)) == {1}


def test_restarts_and_imports_go_on_while_the_policy_sync_waits_on_a_silent_phone(admin_a, tmp_path):
    """Each lane has its own worker, as `make run` and the README deploy them: neither a restart nor
    an import waits behind policy-sync NOTIFYs to phones that do not answer, each of which holds a
    worker for Timer F."""
    env = {"SIP_T1": "0.2"}  # Timer F = 12.8 s
    model = device_model("Yealink", "T54W")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent_phone, Sipp(
        "phone_yealink_reboot.xml", workdir=tmp_path
    ) as sipp:
        silent_phone.bind(("127.0.0.1", 0))  # takes the NOTIFYs and never answers
        silent = DeviceFactory(tenant=admin_a.tenant, model=model, state=DeviceState.SIGNED_IN)
        registered(silent, contact=f"sip:{silent.sip_user}@127.0.0.1:{silent_phone.getsockname()[1]}")
        answering = registered(
            DeviceFactory(tenant=admin_a.tenant, model=model), contact=f"sip:x@127.0.0.1:{sipp.port}"
        )
        purge_broker()
        workers = [
            CeleryWorker(concurrency=1, queues=(queue,), extra_env=env).start()
            for queue in (settings.SYNC_QUEUE, settings.COMMANDS_QUEUE, settings.CELERY_TASK_DEFAULT_QUEUE)
        ]
        try:
            (sync,) = devices_policy_sync_if_behind(ids=[silent.pk])
            wait_until(
                lambda: DeviceCommand.objects.get(pk=sync.pk).status == CommandStatus.SENDING,
                timeout=10, what="the policy sync taken by its lane", details=workers[0].log,
            )
            response = admin_a.api.post(f"/api/v1/devices/{answering.pk}/restart/")
            assert response.status_code == 202
            restart = response.json()["id"]
            rows = "".join(f"02-5F-00-00-{n >> 8:02X}-{n & 255:02X},Lane\n" for n in range(1_500))
            job = admin_a.api.post(
                "/api/v1/devices/import/", f"MAC id,Location\n{rows}", content_type="text/csv"
            ).json()
            assert job["status"] == "queued"
            # No race with the clock: once all three are over, their ends tell whether they waited.
            wait_until(
                lambda: DeviceCommand.objects.get(pk=sync.pk).finished_at is not None
                and DeviceCommand.objects.get(pk=restart).finished_at is not None
                and ImportJob.objects.get(pk=job["id"]).finished_at is not None,
                timeout=60, what="the policy sync, the restart and the import over", details=workers[0].log,
            )
            sync, restart = DeviceCommand.objects.get(pk=sync.pk), DeviceCommand.objects.get(pk=restart)
            imported = ImportJob.objects.get(pk=job["id"])
            assert (sync.status, restart.status, imported.status) == ("unreachable", "sent", "done")
            assert restart.finished_at < sync.finished_at and imported.finished_at < sync.finished_at
            assert sipp.wait() == 0, sipp.report()
        finally:
            for worker in workers:
                worker.stop()
            workers[0].log_path.unlink(missing_ok=True)  # one file for the three: this process's
