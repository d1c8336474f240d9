"""/api/v1/policies/: every endpoint with every caller, then what each endpoint does."""

import pytest

from devices.models import Device
from policies.models import Policy, PolicyAssignment
from policies.services import policy_create, policy_defaults_ensure
from portal.services import Actor
from tests.policies.conftest import member, phone

LIST = "/api/v1/policies/"
SYSTEM = Actor.system("test")


def detail(policy) -> str:
    return f"{LIST}{policy.pk}/"


def assignments(policy) -> str:
    return f"{LIST}{policy.pk}/assignments/"


@pytest.fixture
def policy_a(tenant_a):
    policy_defaults_ensure(tenant=tenant_a)
    return policy_create(tenant=tenant_a, actor=SYSTEM, kind="calling", name="Sales")


@pytest.fixture
def device_a(tenant_a):
    return phone(tenant_a)


def client_of(request, caller_name):
    if caller_name == "anonymous":
        return request.getfixturevalue("anon_api")
    return request.getfixturevalue(caller_name).api


CALLERS = ["admin_a", "tech_a", "user_a", "admin_b", "anonymous"]


def _requests(policy, device):
    return {
        "list": ("get", LIST, None),
        "create": ("post", LIST, {"kind": "ip_phone", "name": "Lobby", "settings": {"language": "de"}}),
        "get": ("get", detail(policy), None),
        "patch": ("patch", detail(policy), {"settings": {"voicemail": False}}),
        "delete": ("delete", detail(policy), None),
        "assign": ("post", assignments(policy), {"devices": [device.pk]}),
        "unassign": ("delete", assignments(policy), {"devices": [device.pk]}),
    }


EXPECTED = {
    #            admin_a tech_a user_a admin_b anonymous
    "list": (200, 403, 403, 200, 401),
    "create": (201, 403, 403, 201, 401),
    "get": (200, 403, 403, 404, 401),
    "patch": (200, 403, 403, 404, 401),
    "delete": (204, 403, 403, 404, 401),
    "assign": (200, 403, 403, 404, 401),
    "unassign": (200, 403, 403, 404, 401),
}


@pytest.mark.parametrize("endpoint", list(EXPECTED))
@pytest.mark.parametrize("caller_index", range(len(CALLERS)), ids=CALLERS)
def test_each_endpoint_answers_each_caller(request, endpoint, caller_index, policy_a, device_a):
    caller = CALLERS[caller_index]
    method, url, body = _requests(policy_a, device_a)[endpoint]
    response = getattr(client_of(request, caller), method)(url, body, format="json")
    assert response.status_code == EXPECTED[endpoint][caller_index], response.content


def test_another_tenants_admin_neither_sees_nor_changes_the_policy(admin_b, policy_a, device_a):
    listed = admin_b.api.get(LIST).json()["results"]
    assert policy_a.pk not in {p["id"] for p in listed}
    assert {p["name"] for p in listed} == {"Global (Org-wide default)"}
    admin_b.api.patch(detail(policy_a), {"name": "Stolen"}, format="json")
    admin_b.api.post(assignments(policy_a), {"tenant_default": True}, format="json")
    policy_a.refresh_from_db()
    assert (policy_a.name, policy_a.is_default) == ("Sales", False)


def test_the_list_has_each_kinds_default_and_filters_by_kind(admin_a, policy_a):
    results = admin_a.api.get(LIST).json()["results"]
    assert sorted((p["kind"], p["is_default"]) for p in results) == [
        ("calling", False),
        ("calling", True),
        ("emergency_calling", True),
        ("ip_phone", True),
    ]
    calling = admin_a.api.get(LIST, {"kind": "calling"}).json()["results"]
    assert {p["name"] for p in calling} == {"Sales", "Global (Org-wide default)"}
    assert admin_a.api.get(LIST, {"kind": "fax"}).status_code == 400


def test_the_list_pages_with_a_cursor(admin_a, tenant_a):
    policy_defaults_ensure(tenant=tenant_a)
    for n in range(4):
        policy_create(tenant=tenant_a, actor=SYSTEM, kind="calling", name=f"P{n}")
    first = admin_a.api.get(LIST, {"page_size": 4}).json()
    second = admin_a.api.get(first["next"]).json()
    assert len(first["results"]) == 4 and len(second["results"]) == 3
    assert not {p["id"] for p in first["results"]} & {p["id"] for p in second["results"]}


def test_a_created_policy_comes_back_complete(admin_a):
    response = admin_a.api.post(
        LIST, {"kind": "ip_phone", "name": "Lobby", "settings": {"language": "de"}}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["settings"] == {
        "sign_in_mode": "user",
        "hot_desking_timeout": 120,
        "language": "de",
        "time_zone": "UTC",
    }
    assert (body["kind"], body["name"], body["is_default"], body["version"], body["devices"], body["users"]) == (
        "ip_phone",
        "Lobby",
        False,
        1,
        0,
        0,
    )


def test_setting_errors_come_back_under_settings_by_field(admin_a, policy_a):
    response = admin_a.api.post(
        LIST, {"kind": "calling", "name": "Sales", "settings": {"forward_to": "abc", "fax": True}}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["name"] == ['A calling policy named "Sales" already exists.']
    assert set(body["settings"]) == {"forward_to", "fax"}
    response = admin_a.api.patch(detail(policy_a), {"settings": {"voicemail": "off"}}, format="json")
    assert response.json() == {"settings": {"voicemail": ["Must be true or false."]}}


def test_an_unknown_kind_is_a_field_error(admin_a):
    response = admin_a.api.post(LIST, {"kind": "fax", "name": "X"}, format="json")
    assert response.status_code == 400
    assert "kind" in response.json()


def test_patching_settings_bumps_the_version_and_the_devices_it_applies_to(admin_a, tenant_a, policy_a):
    device = phone(tenant_a)
    admin_a.api.post(assignments(policy_a), {"devices": [device.mac]}, format="json")
    before = admin_a.api.get(f"/api/v1/devices/{device.pk}/").json()["policy"]
    body = admin_a.api.patch(detail(policy_a), {"settings": {"voicemail": False}}, format="json").json()
    assert (body["version"], body["settings"]["voicemail"], body["devices"]) == (2, False, 1)
    after = admin_a.api.get(f"/api/v1/devices/{device.pk}/").json()["policy"]
    assert after == {"wanted_version": before["wanted_version"] + 1, "synced_version": before["synced_version"]}


def test_assigning_by_mac_e_mail_or_as_default(admin_a, tenant_a, policy_a):
    user = member(tenant_a)
    device = phone(tenant_a, user=user)
    response = admin_a.api.post(
        assignments(policy_a), {"devices": [device.mac.lower().replace("-", ":")]}, format="json"
    )
    assert response.json() == {"assigned": 1, "devices_raised": 1}
    response = admin_a.api.post(assignments(policy_a), {"users": [user.username.upper()]}, format="json")
    assert response.json() == {"assigned": 1, "devices_raised": 0}  # the device's own policy wins anyway
    response = admin_a.api.post(assignments(policy_a), {"tenant_default": True}, format="json")
    assert response.status_code == 200
    assert Policy.objects.get(tenant=tenant_a, kind="calling", is_default=True) == policy_a
    assert set(PolicyAssignment.objects.values_list("device_id", "user_id")) == {(device.pk, None), (None, user.pk)}


def test_an_assignment_names_exactly_one_target(admin_a, policy_a, device_a):
    for body in ({}, {"devices": [device_a.pk], "users": ["x@example.com"]}, {"tenant_default": False}):
        response = admin_a.api.post(assignments(policy_a), body, format="json")
        assert response.status_code == 400, body
        assert response.json() == {
            "non_field_errors": ['Give exactly one of "devices", "users" or "tenant_default": true.']
        }


def test_unknown_or_foreign_devices_are_refused_and_nothing_is_assigned(admin_a, tenant_b, policy_a, device_a):
    theirs = phone(tenant_b)
    response = admin_a.api.post(assignments(policy_a), {"devices": [device_a.pk, theirs.pk, "nonsense"]}, format="json")
    assert response.status_code == 400
    assert response.json() == {"devices": ['"nonsense" is not a device id or a MAC address.']}
    response = admin_a.api.post(assignments(policy_a), {"devices": [device_a.pk, theirs.pk]}, format="json")
    assert response.json() == {"devices": [f"No such device: {theirs.pk}."]}
    assert not PolicyAssignment.objects.exists()


def test_taking_a_policy_back_lets_the_device_fall_back(admin_a, tenant_a, policy_a, device_a):
    admin_a.api.post(assignments(policy_a), {"devices": [device_a.pk]}, format="json")
    response = admin_a.api.delete(assignments(policy_a), {"devices": [device_a.pk]}, format="json")
    assert response.json() == {"assigned": 1, "devices_raised": 1}
    assert not PolicyAssignment.objects.exists()
    response = admin_a.api.delete(assignments(policy_a), {"tenant_default": True}, format="json")
    assert response.status_code == 400


def test_the_default_cannot_be_deleted(admin_a, tenant_a):
    default = policy_defaults_ensure(tenant=tenant_a)["ip_phone"]
    response = admin_a.api.delete(detail(default))
    assert response.status_code == 400
    assert "Make another policy the default" in response.json()["non_field_errors"][0]
    assert Policy.objects.filter(pk=default.pk).exists()


def test_the_device_list_filters_by_policy_sync(admin_a, tenant_a, policy_a):
    in_sync, behind = phone(tenant_a), phone(tenant_a)
    Device.objects.filter(pk=behind.pk).update(wanted_version=9)
    ids = lambda state: {d["id"] for d in admin_a.api.get("/api/v1/devices/", {"policy_sync": state}).json()["results"]}  # noqa: E731
    assert ids("in_sync") == {in_sync.pk}
    assert ids("pending") == {behind.pk}
    assert ids("failed") == set()
    assert admin_a.api.get("/api/v1/devices/", {"policy_sync": "late"}).status_code == 400


def test_the_openapi_schema_describes_the_policy_endpoints(anon_api):
    schema = anon_api.get("/api/schema/", {"format": "json"}).json()
    assert {"/api/v1/policies/", "/api/v1/policies/{id}/", "/api/v1/policies/{id}/assignments/"} <= set(schema["paths"])
    assert set(schema["paths"]["/api/v1/policies/{id}/assignments/"]) >= {"post", "delete"}
