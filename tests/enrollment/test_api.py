from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from enrollment.models import VerificationCode
from enrollment.services import verification_code_issue, verification_codes_issue
from portal.models import AuditEvent
from portal.services import Actor
from tests.factories import DeviceFactory


def with_codes(tenant, actor, count: int) -> None:
    devices = DeviceFactory.create_batch(count, tenant=tenant)
    verification_codes_issue(tenant=tenant, actor=actor, ids=[d.pk for d in devices])

BULK = "/api/v1/devices/verification-codes/"


def one(device) -> str:
    return f"/api/v1/devices/{device.pk}/verification-code/"


def test_an_admin_generates_a_code_and_gets_the_device_back(admin_a, waiting_a):
    response = admin_a.api.post(one(waiting_a))
    assert response.status_code == 201
    body = response.json()
    assert body["id"] == waiting_a.pk and body["mac"] == waiting_a.mac
    row = VerificationCode.objects.get(device=waiting_a)
    assert body["verification_code"]["code"] == row.code
    assert parse_datetime(body["verification_code"]["expires_at"]) == row.expires_at
    assert AuditEvent.objects.get(action="verification_code.issue").actor_type == "token"


def test_generating_again_replaces_the_code(admin_a, waiting_a):
    first = admin_a.api.post(one(waiting_a)).json()["verification_code"]["code"]
    second = admin_a.api.post(one(waiting_a)).json()["verification_code"]["code"]
    assert first != second and VerificationCode.objects.get(device=waiting_a).code == second


# The bulk endpoint skips ids that are not the caller's (see VerificationCodesView): another
# tenant's admin gets 201 with nothing issued and the id named as skipped, not the single-device
# endpoint's 404.
@pytest.mark.parametrize(
    "caller, expected, expected_bulk, bulk_body",
    [
        ("tech_a", 403, 403, None),
        ("user_a", 403, 403, None),
        ("admin_b", 404, 201, {"count": 0, "codes": []}),
    ],
)
def test_only_the_tenants_admins_generate_codes(request, waiting_a, caller, expected, expected_bulk, bulk_body):
    api = request.getfixturevalue(caller).api
    assert api.post(one(waiting_a)).status_code == expected
    assert not VerificationCode.objects.exists()
    response = api.post(BULK, {"ids": [waiting_a.pk]}, format="json")
    assert response.status_code == expected_bulk
    if bulk_body is not None:
        assert response.json() == {**bulk_body, "skipped": [waiting_a.pk]}
    assert not VerificationCode.objects.exists()
    assert not AuditEvent.objects.filter(action="verification_code.issue").exists()


def test_anonymous_callers_are_refused(anon_api, waiting_a):
    assert anon_api.post(one(waiting_a)).status_code == 401
    assert anon_api.post(BULK, {"state": "waiting_on_activation"}, format="json").status_code == 401


def test_an_enrolled_device_is_a_400(admin_a, enrolled_a):
    response = admin_a.api.post(one(enrolled_a))
    assert response.status_code == 400 and "already enrolled" in str(response.json())


def test_bulk_by_ids_issues_only_the_callers_waiting_devices(admin_a, admin_b, tenant_a, waiting_b, enrolled_a):
    mine = DeviceFactory.create_batch(2, tenant=tenant_a)
    response = admin_a.api.post(BULK, {"ids": [mine[0].pk, mine[1].pk, waiting_b.pk, enrolled_a.pk]}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["count"] == 2
    # What got no code is named: another tenant's device and ours that is enrolled already.
    assert body["skipped"] == sorted([waiting_b.pk, enrolled_a.pk])
    codes = {c["id"]: c for c in body["codes"]}
    assert set(codes) == {d.pk for d in mine}
    for device in mine:
        row = VerificationCode.objects.get(device=device)
        assert codes[device.pk] == {
            "id": device.pk, "mac": device.mac, "code": row.code,
            "expires_at": codes[device.pk]["expires_at"],
        }
        assert parse_datetime(codes[device.pk]["expires_at"]) == row.expires_at
    assert not VerificationCode.objects.filter(device=waiting_b).exists()
    # Another tenant's admin bulk-issuing our ids issues nothing.
    assert admin_b.api.post(BULK, {"ids": [mine[0].pk]}, format="json").json() == {
        "count": 0, "codes": [], "skipped": [mine[0].pk]
    }


def test_bulk_by_state_issues_every_device_waiting_on_activation(admin_a, tenant_a, enrolled_a):
    waiting = DeviceFactory.create_batch(3, tenant=tenant_a)
    body = admin_a.api.post(BULK, {"state": "waiting_on_activation"}, format="json").json()
    assert body["count"] == 3 and {c["id"] for c in body["codes"]} == {d.pk for d in waiting}
    assert body["skipped"] == []


@pytest.mark.parametrize(
    "data",
    [
        {}, {"ids": [1], "state": "waiting_on_activation"}, {"state": "signed_in"},
        {"ids": []}, {"ids": ["x"]}, {"ids": 5},
    ],
)
def test_a_bulk_request_names_exactly_one_valid_target(admin_a, data):
    assert admin_a.api.post(BULK, data, format="json").status_code == 400


def test_the_device_json_shows_the_live_code_to_admins_and_technicians(admin_a, tech_a, waiting_a):
    issued = verification_code_issue(device=waiting_a, actor=Actor.of_user(admin_a.user))
    for caller in (admin_a, tech_a):
        detail = caller.api.get(f"/api/v1/devices/{waiting_a.pk}/").json()
        assert detail["verification_code"]["code"] == issued.code
        listed = caller.api.get("/api/v1/devices/").json()["results"][0]
        assert listed["verification_code"]["code"] == issued.code
    VerificationCode.objects.filter(device=waiting_a).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert admin_a.api.get(f"/api/v1/devices/{waiting_a.pk}/").json()["verification_code"] is None


def test_a_technician_reading_codes_through_the_api_is_audited(admin_a, tech_a, tenant_a):
    devices = DeviceFactory.create_batch(3, tenant=tenant_a)
    verification_codes_issue(tenant=tenant_a, actor=Actor.of_user(admin_a.user), ids=[d.pk for d in devices[:2]])
    tech_a.api.get("/api/v1/devices/")
    tech_a.api.get(f"/api/v1/devices/{devices[0].pk}/")
    tech_a.api.get(f"/api/v1/devices/{devices[2].pk}/")  # no code shown, nothing to audit
    views = AuditEvent.objects.filter(action="verification_code.view").order_by("id")
    assert sorted(views.values_list("object_id", flat=True)) == sorted([devices[0].pk, devices[1].pk, devices[0].pk])
    assert {e.actor_type for e in views} == {"token"}
    admin_a.api.get("/api/v1/devices/")
    assert views.count() == 3


def test_the_device_list_loads_codes_without_a_query_per_device(tech_a, admin_a, tenant_a):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert tech_a.api.get("/api/v1/devices/").status_code == 200
        return len(captured.captured_queries)

    queries()  # the token's first use of the minute is recorded: keep it out of the count
    actor = Actor.of_user(admin_a.user)
    with_codes(tenant_a, actor, 2)
    few = queries()
    with_codes(tenant_a, actor, 30)
    assert queries() == few


def test_the_schema_documents_both_endpoints(anon_api):
    schema = anon_api.get("/api/schema/", {"format": "json"}).json()
    single = schema["paths"]["/api/v1/devices/{id}/verification-code/"]["post"]
    assert "201" in single["responses"] and "Device" in str(single["responses"]["201"])
    bulk = schema["paths"]["/api/v1/devices/verification-codes/"]["post"]
    assert "VerificationCodesRequest" in str(bulk["requestBody"]) and "201" in bulk["responses"]
