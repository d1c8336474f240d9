"""POST /api/v1/devices/{id}/sign-in/ and /sign-out/."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from devices.choices import CommandKind, CommandStatus, DeviceState
from devices.models import DeviceCommand
from enrollment.models import PairingRequest
from enrollment.services import pairing_approve, pairing_request_start
from portal.models import AuditEvent
from portal.services import Actor
from tests.factories import registered


@pytest.fixture
def phone(enrolled_a):
    return registered(enrolled_a, contact=f"sip:{enrolled_a.sip_user}@192.0.2.80:5060")


@pytest.fixture
def paired(phone, user_a):
    user_a.user.phone_number = "+14255550100"
    user_a.user.save()
    code = pairing_request_start(device=phone, actor=Actor.phone(phone.mac)).user_code
    assert pairing_approve(user=user_a.user, code=code, source="192.0.2.1").ok
    DeviceCommand.objects.all().delete()
    phone.refresh_from_db()
    return phone


def sign_in(device) -> str:
    return f"/api/v1/devices/{device.pk}/sign-in/"


def sign_out(device) -> str:
    return f"/api/v1/devices/{device.pk}/sign-out/"


def test_an_admin_starts_a_sign_in_and_gets_the_code_and_url(admin_a, user_a, phone, settings):
    settings.PUBLIC_BASE_URL = "https://portal.example.com"
    response = admin_a.api.post(sign_in(phone))
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"verification_uri", "verification_uri_complete", "user_code", "expires_in", "expires_at"}
    assert re.fullmatch(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}", body["user_code"])
    assert body["verification_uri"] == "https://portal.example.com/pair/"
    assert body["verification_uri_complete"] == f"https://portal.example.com/pair/?code={body['user_code']}"
    assert 14 * 60 < body["expires_in"] <= 15 * 60
    assert parse_datetime(body["expires_at"]) == PairingRequest.objects.get().expires_at
    assert AuditEvent.objects.get(action="pairing.start").actor_type == "token"
    assert pairing_approve(user=user_a.user, code=body["user_code"], source="192.0.2.1").ok


def test_a_second_start_replaces_the_first_code(admin_a, user_a, phone):
    first = admin_a.api.post(sign_in(phone)).json()["user_code"]
    second = admin_a.api.post(sign_in(phone)).json()["user_code"]
    assert not pairing_approve(user=user_a.user, code=first, source="192.0.2.1").ok
    assert pairing_approve(user=user_a.user, code=second, source="192.0.2.1").ok


@pytest.mark.parametrize(
    "state, message",
    [
        (DeviceState.WAITING_ON_ACTIVATION, "is not enrolled yet"),
        (DeviceState.SIGNED_IN, "is already signed in. Sign it out first."),
    ],
)
def test_a_start_on_a_phone_in_the_wrong_state_is_a_400(admin_a, phone, state, message):
    phone.state = state
    phone.save()
    response = admin_a.api.post(sign_in(phone))
    assert response.status_code == 400
    assert message in response.json()["non_field_errors"][0]


def test_an_admin_signs_a_phone_out_and_gets_the_device(admin_a, paired):
    wanted = paired.wanted_version
    response = admin_a.api.post(sign_out(paired))
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["state"], body["user"], body["phone_number"]) == (
        paired.pk, "waiting_for_sign_in", None, "",
    )
    assert body["policy"]["wanted_version"] == wanted + 1
    (command,) = DeviceCommand.objects.filter(device=paired, kind=CommandKind.RESYNC)
    assert command.status == CommandStatus.QUEUED
    assert AuditEvent.objects.get(action="device.sign_out").actor_type == "token"


def test_signing_out_again_is_a_200_that_changes_nothing(admin_a, paired):
    admin_a.api.post(sign_out(paired))
    response = admin_a.api.post(sign_out(paired))
    assert response.status_code == 200 and response.json()["state"] == "waiting_for_sign_in"
    assert AuditEvent.objects.filter(action="device.sign_out").count() == 1
    assert DeviceCommand.objects.filter(device=paired).count() == 1


def test_a_signed_in_device_shows_its_user_in_the_device_json(admin_a, user_a, paired):
    body = admin_a.api.get(f"/api/v1/devices/{paired.pk}/").json()
    assert (body["state"], body["user"], body["phone_number"]) == ("signed_in", user_a.user.username, "+14255550100")


@pytest.mark.parametrize("caller, expected", [("tech_a", 403), ("user_a", 403), ("admin_b", 404)])
def test_only_the_tenants_admins_sign_in_or_out(request, paired, caller, expected):
    api = request.getfixturevalue(caller).api
    assert api.post(sign_out(paired)).status_code == expected
    paired.refresh_from_db()
    assert paired.state == DeviceState.SIGNED_IN
    paired.state = DeviceState.WAITING_FOR_SIGN_IN
    paired.save()
    assert api.post(sign_in(paired)).status_code == expected
    assert not PairingRequest.objects.filter(status="pending").exists()


def test_anonymous_callers_are_refused(anon_api, paired):
    assert anon_api.post(sign_out(paired)).status_code in (401, 403)
    assert anon_api.post(sign_in(paired)).status_code in (401, 403)


def test_an_unknown_device_is_a_404(admin_a, db):
    assert admin_a.api.post("/api/v1/devices/999999/sign-out/").status_code == 404
    assert admin_a.api.post("/api/v1/devices/999999/sign-in/").status_code == 404


def test_get_is_not_allowed(admin_a, phone):
    assert admin_a.api.get(sign_in(phone)).status_code == 405
    assert admin_a.api.get(sign_out(phone)).status_code == 405


def test_the_endpoints_are_in_the_openapi_schema(admin_a):
    schema = admin_a.api.get("/api/schema/", {"format": "json"}).json()
    assert "post" in schema["paths"]["/api/v1/devices/{id}/sign-in/"]
    assert "post" in schema["paths"]["/api/v1/devices/{id}/sign-out/"]


def test_an_expired_admin_code_cannot_be_used(admin_a, user_a, phone):
    code = admin_a.api.post(sign_in(phone)).json()["user_code"]
    PairingRequest.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert pairing_approve(user=user_a.user, code=code, source="192.0.2.1").outcome == "expired"
