"""REST API v1 for devices: every endpoint for every kind of caller, the JSON shape DESIGN.md
promises, field errors, filters, sorting, cursor pages, session auth and the OpenAPI docs."""

import json
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from devices.choices import DeviceState
from devices.models import Device
from portal.choices import ActorType
from portal.models import AuditEvent
from tests.conftest import login
from tests.factories import DeviceFactory, device_model, registered

LIST = "/api/v1/devices/"

DESIGN_FIELDS = {
    "id", "mac", "display_name", "location", "vendor", "model", "firmware", "state", "online", "user",
    "phone_number", "last_seen", "last_provisioned", "policy", "verification_code",
}
# Beyond DESIGN.md, the API also says when a device was onboarded and last changed.
EXTRA_FIELDS = {"created_at", "updated_at"}


def detail(device) -> str:
    return f"/api/v1/devices/{device.pk}/"


@pytest.fixture
def device_a(tenant_a):
    return DeviceFactory(tenant=tenant_a, mac="00-15-65-12-34-56", display_name="Lobby phone", location="Lobby")


def client_of(request, caller_name):
    if caller_name == "anonymous":
        return request.getfixturevalue("anon_api")
    return request.getfixturevalue(caller_name).api


def call(api, method, url, data=None):
    return getattr(api, method)(url, data, format="json") if data is not None else getattr(api, method)(url)


# --- who may do what ----------------------------------------------------------------------------

ONE_DEVICE = [
    ("get", None),
    ("patch", {"display_name": "Renamed"}),
    ("delete", None),
]


@pytest.mark.parametrize(
    "caller, expected",
    [("admin_a", 200), ("tech_a", 200), ("user_a", 403), ("admin_b", 200), ("anonymous", 401)],
)
def test_who_may_list_devices(request, device_a, caller, expected):
    response = client_of(request, caller).get(LIST)
    assert response.status_code == expected


def test_another_tenant_never_sees_a_device_in_its_list(admin_b, device_a):
    DeviceFactory(tenant=admin_b.tenant, mac="00-15-65-AA-AA-AA")
    macs = [d["mac"] for d in admin_b.api.get(LIST).json()["results"]]
    assert macs == ["00-15-65-AA-AA-AA"]
    assert admin_b.api.get(LIST, {"q": "12:34:56"}).json()["results"] == []


@pytest.mark.parametrize(
    "caller, expected",
    [("admin_a", 201), ("tech_a", 403), ("user_a", 403), ("admin_b", 201), ("anonymous", 401)],
)
def test_who_may_onboard_devices(request, tenant_a, caller, expected):
    response = client_of(request, caller).post(LIST, {"mac": "0015.6500.0001", "location": "Lab"}, format="json")
    assert response.status_code == expected
    assert Device.objects.filter(mac="00-15-65-00-00-01").exists() == (expected == 201)


@pytest.mark.parametrize("method, data", ONE_DEVICE)
@pytest.mark.parametrize(
    "caller, expected",
    [("admin_a", None), ("tech_a", None), ("user_a", 403), ("admin_b", 404), ("anonymous", 401)],
)
def test_who_may_read_change_and_delete_one_device(request, device_a, method, data, caller, expected):
    if expected is None:  # admins do everything; technicians only read
        expected = {"get": 200, "patch": 200, "delete": 204}[method]
        if caller == "tech_a" and method != "get":
            expected = 403
    response = call(client_of(request, caller), method, detail(device_a), data)
    assert response.status_code == expected
    if method == "patch":
        device_a.refresh_from_db()
        assert (device_a.display_name == "Renamed") == (expected == 200)
    if method == "delete":
        assert Device.objects.filter(pk=device_a.pk).exists() == (expected != 204)


@pytest.mark.parametrize("method, data", ONE_DEVICE)
def test_another_tenants_device_is_a_404_that_looks_like_a_missing_one(admin_b, device_a, method, data):
    theirs = call(admin_b.api, method, detail(device_a), data)
    missing = call(admin_b.api, method, "/api/v1/devices/999999999/", data)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()


def test_a_bad_token_is_a_401(device_a):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert api.get(LIST).status_code == 401
    assert api.get(detail(device_a)).status_code == 401


# --- the JSON shape -----------------------------------------------------------------------------


def test_a_device_has_exactly_the_fields_of_the_design(admin_a, device_a):
    body = admin_a.api.get(detail(device_a)).json()
    assert set(body) == DESIGN_FIELDS | EXTRA_FIELDS
    assert set(body["policy"]) == {"wanted_version", "synced_version"}
    assert admin_a.api.get(LIST).json()["results"] == [body]


def test_a_device_reads_as_a_person_would_expect(admin_a, user_a, device_a):
    device_a.model = device_model("Yealink", "T54W")
    device_a.firmware = "96.86.0.70"
    device_a.state = DeviceState.SIGNED_IN
    device_a.signed_in_user = user_a.user
    device_a.phone_number = "+1 425 555 0100"
    device_a.last_seen_at = timezone.now()
    device_a.last_provisioned_at = timezone.now()
    device_a.last_provisioned_ip = "192.0.2.10"
    device_a.last_provisioned_user_agent = "Yealink SIP-T54W 96.86.0.70"
    device_a.save()
    registered(device_a, contact="sip:001565123456@192.0.2.10:5060")

    body = admin_a.api.get(detail(device_a)).json()
    assert body["mac"] == "00-15-65-12-34-56"
    assert (body["vendor"], body["model"], body["firmware"]) == ("Yealink", "T54W", "96.86.0.70")
    assert body["state"] == "signed_in"
    assert body["online"] is True
    assert body["user"] == user_a.user.username
    assert body["last_provisioned"]["ip"] == "192.0.2.10"
    assert body["policy"] == {"wanted_version": 1, "synced_version": 0}
    assert body["verification_code"] is None


def test_a_fresh_device_has_nulls_not_empty_objects(admin_a, device_a):
    body = admin_a.api.get(detail(device_a)).json()
    assert body["vendor"] is body["model"] is body["user"] is None
    assert body["last_seen"] is body["last_provisioned"] is None
    assert body["online"] is False


def test_onboarding_answers_the_device_in_canonical_form(admin_a):
    response = admin_a.api.post(
        LIST, {"mac": "00:15:65:ab:cd:ef", "location": " Lab 3 ", "display_name": "Bench", "model": "Yealink T54W"},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["mac"] == "00-15-65-AB-CD-EF"
    assert (body["location"], body["display_name"]) == ("Lab 3", "Bench")
    assert (body["vendor"], body["model"]) == ("Yealink", "T54W")
    assert body["state"] == "waiting_on_activation"
    assert Device.objects.get(pk=body["id"]).tenant == admin_a.tenant


def test_patch_changes_only_what_it_names(admin_a, device_a):
    response = admin_a.api.patch(detail(device_a), {"location": "Floor 2", "model": "T54W"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["location"], body["model"], body["display_name"]) == ("Floor 2", "T54W", "Lobby phone")
    response = admin_a.api.patch(detail(device_a), {"model": None}, format="json")
    assert response.json()["model"] is None


# --- field errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, errors",
    [
        ({"mac": "00-15-65-ZZ", "location": "Lobby"}, {"mac": ['"00-15-65-ZZ" is not a MAC address']}),
        ({"mac": "00-15-65-12-34-99"}, {"location": ["This field is required."]}),
        ({"mac": "00-15-65-12-34-99", "location": "  "}, {"location": ["This field is required."]}),
        ({"location": "Lobby"}, {"mac": ["This field is required."]}),
        ({"mac": "00-15-65-12-34-99", "location": "Lobby", "model": "Nokia 3310"},
         {"model": ['"Nokia 3310" is not a known device model']}),
    ],
)
def test_it_answers_field_errors_by_field(admin_a, data, errors):
    response = admin_a.api.post(LIST, data, format="json")
    assert response.status_code == 400
    assert response.json() == errors
    assert not Device.objects.exists()


def test_a_mac_already_in_your_inventory_says_so(admin_a, device_a):
    response = admin_a.api.post(LIST, {"mac": "001565123456", "location": "Lobby"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"mac": ["00-15-65-12-34-56 is already in your inventory"]}


def test_a_mac_of_another_organization_never_names_it(admin_b, device_a):
    response = admin_b.api.post(LIST, {"mac": "00:15:65:12:34:56", "location": "Lobby"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"mac": ["00-15-65-12-34-56 is already onboarded by another organization"]}
    assert device_a.tenant.name not in response.content.decode()
    assert Device.objects.get(mac="00-15-65-12-34-56").tenant == device_a.tenant


@pytest.mark.parametrize(
    "data, fields",
    [
        ({"location": "", "model": "Nokia 3310", "display_name": "New name"}, {"location", "model"}),
        ({"display_name": "x" * 101}, {"display_name"}),
    ],
)
def test_patch_reports_field_errors_and_changes_nothing(admin_a, device_a, data, fields):
    response = admin_a.api.patch(detail(device_a), data, format="json")
    assert response.status_code == 400
    assert set(response.json()) == fields
    device_a.refresh_from_db()
    assert (device_a.location, device_a.display_name, device_a.model) == ("Lobby", "Lobby phone", None)


def test_an_unknown_filter_value_is_a_field_error(admin_a):
    response = admin_a.api.get(LIST, {"state": "asleep"})
    assert response.status_code == 400
    assert list(response.json()) == ["state"]


# --- audit --------------------------------------------------------------------------------------


def test_every_api_write_is_audited_as_the_token(admin_a, device_a):
    created = admin_a.api.post(LIST, {"mac": "00-15-65-00-00-02", "location": "Lab"}, format="json").json()
    admin_a.api.patch(detail(device_a), {"location": "Floor 2"}, format="json")
    admin_a.api.delete(detail(device_a))
    events = AuditEvent.objects.filter(tenant=admin_a.tenant).order_by("id")
    assert [(e.action, e.object_id) for e in events] == [
        ("device.onboard", created["id"]), ("device.update", device_a.pk), ("device.delete", device_a.pk),
    ]
    assert {e.actor_type for e in events} == {ActorType.TOKEN}
    assert {e.actor_user for e in events} == {admin_a.user}
    assert admin_a.token[:8] in events[0].actor_label
    assert events[1].details == {"location": ["Lobby", "Floor 2"]}


def test_refused_writes_leave_no_audit_trace(tech_a, admin_b, device_a):
    tech_a.api.patch(detail(device_a), {"location": "Floor 2"}, format="json")
    admin_b.api.delete(detail(device_a))
    admin_b.api.post(LIST, {"mac": device_a.mac, "location": "x"}, format="json")
    assert not AuditEvent.objects.exists()


# --- filters and sorting ------------------------------------------------------------------------


@pytest.fixture
def inventory(tenant_a, tenant_b):
    now = timezone.now()
    devices = {
        "lobby": DeviceFactory(tenant=tenant_a, mac="00-15-65-12-34-56", display_name="Reception desk",
                               location="Building 1 / Lobby", model=device_model("Yealink", "T54W"),
                               last_seen_at=now - timedelta(minutes=5)),
        "boardroom": DeviceFactory(tenant=tenant_a, mac="64-16-7F-00-00-01", display_name="Boardroom",
                                   location="Building 2 / Floor 3", model=device_model("Poly", "VVX 450"),
                                   state=DeviceState.WAITING_FOR_SIGN_IN, last_seen_at=now - timedelta(days=2)),
        "kitchen": DeviceFactory(tenant=tenant_a, mac="00-15-65-99-34-57", display_name="Kitchen",
                                 location="Building 1 / Kitchen", state=DeviceState.SIGNED_IN),
        "theirs": DeviceFactory(tenant=tenant_b, mac="00-15-65-12-34-00", display_name="Reception desk",
                                location="Building 1 / Lobby", model=device_model("Yealink", "T54W")),
    }
    registered(devices["boardroom"], contact="sip:64167f000001@192.0.2.20")
    return devices


def listed(api, **params) -> list[str]:
    response = api.get(LIST, params)
    assert response.status_code == 200, response.content
    return [d["display_name"] for d in response.json()["results"]]


@pytest.mark.parametrize(
    "params, expected",
    [
        ({}, {"Reception desk", "Boardroom", "Kitchen"}),
        ({"state": "waiting_for_sign_in"}, {"Boardroom"}),
        ({"state": "signed_in"}, {"Kitchen"}),
        ({"q": "34:56"}, {"Reception desk"}),
        ({"q": "34-56"}, {"Reception desk"}),
        ({"q": "123456"}, {"Reception desk"}),
        ({"q": "64167f"}, {"Boardroom"}),
        ({"q": "0015.65"}, {"Reception desk", "Kitchen"}),
        ({"q": "board"}, {"Boardroom"}),
        ({"q": "kitchen"}, {"Kitchen"}),
        ({"q": "floor 3"}, {"Boardroom"}),
        ({"model": "T54W"}, {"Reception desk"}),
        ({"model": "poly vvx 450"}, {"Boardroom"}),
        ({"vendor": "yealink"}, {"Reception desk"}),
        ({"location": "building 1"}, {"Reception desk", "Kitchen"}),
        ({"online": "true"}, {"Boardroom"}),
        ({"online": "false"}, {"Reception desk", "Kitchen"}),
        ({"state": "waiting_on_activation", "location": "lobby", "q": "34"}, {"Reception desk"}),
        ({"q": "nothing like this"}, set()),
    ],
)
def test_filters_narrow_the_list(admin_a, inventory, params, expected):
    assert set(listed(admin_a.api, **params)) == expected


def test_a_model_filter_takes_the_catalog_id(admin_a, inventory):
    assert listed(admin_a.api, model=str(device_model("Poly", "VVX 450").pk)) == ["Boardroom"]


@pytest.mark.parametrize(
    "sort, expected",
    [
        ("display_name", ["Boardroom", "Kitchen", "Reception desk"]),
        ("-display_name", ["Reception desk", "Kitchen", "Boardroom"]),
        ("mac", ["Reception desk", "Kitchen", "Boardroom"]),
        ("vendor", ["Boardroom", "Reception desk", "Kitchen"]),
        ("-vendor", ["Reception desk", "Boardroom", "Kitchen"]),
        ("last_seen", ["Boardroom", "Reception desk", "Kitchen"]),
        ("-last_seen", ["Reception desk", "Boardroom", "Kitchen"]),
        ("created", ["Kitchen", "Boardroom", "Reception desk"]),
        ("-created", ["Reception desk", "Boardroom", "Kitchen"]),
        ("no-such-column", ["Kitchen", "Boardroom", "Reception desk"]),
    ],
)
def test_it_sorts_by_any_column_with_missing_values_last(admin_a, inventory, sort, expected):
    assert listed(admin_a.api, sort=sort) == expected


# --- cursor pages -------------------------------------------------------------------------------


def follow(api, url, key):
    pages = []
    while url:
        response = api.get(url)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"next", "previous", "results"}
        pages.append([d["id"] for d in body["results"]])
        url = body[key]
        assert len(pages) < 50
    return pages, body


@pytest.mark.parametrize("sort", ["", "display_name", "-last_seen", "vendor", "-mac"])
def test_cursor_pages_walk_forward_and_back_without_gaps_or_repeats(admin_a, tenant_a, tenant_b, sort):
    now = timezone.now()
    for n in range(11):
        DeviceFactory(
            tenant=tenant_a, display_name=f"Phone {n % 4}",
            last_seen_at=now - timedelta(hours=n) if n % 3 else None,
            model=device_model("Yealink", "T54W") if n % 2 else None,
        )
    DeviceFactory.create_batch(3, tenant=tenant_b)
    everything = [d["id"] for d in admin_a.api.get(LIST, {"sort": sort, "page_size": 500}).json()["results"]]
    assert len(everything) == 11

    forward, last = follow(admin_a.api, f"{LIST}?sort={sort}&page_size=3", "next")
    assert [len(p) for p in forward] == [3, 3, 3, 2]
    assert [i for page in forward for i in page] == everything
    assert last["next"] is None and last["previous"]

    back, first = follow(admin_a.api, last["previous"], "previous")
    assert [i for page in reversed(back) for i in page] == everything[:9]
    assert first["previous"] is None


def test_page_links_keep_the_filters_and_sort(admin_a, tenant_a):
    DeviceFactory.create_batch(3, tenant=tenant_a, location="Lab")
    DeviceFactory(tenant=tenant_a, location="Elsewhere")
    body = admin_a.api.get(LIST, {"location": "lab", "sort": "mac", "page_size": 2}).json()
    query = parse_qs(urlparse(body["next"]).query)
    assert (query["location"], query["sort"], query["page_size"]) == (["lab"], ["mac"], ["2"])
    assert len(admin_a.api.get(body["next"]).json()["results"]) == 1


def test_a_broken_cursor_is_a_404_not_a_crash(admin_a, device_a):
    response = admin_a.api.get(LIST, {"cursor": "garbage"})
    assert response.status_code == 404


def test_page_size_is_bounded(admin_a, tenant_a):
    DeviceFactory.create_batch(3, tenant=tenant_a)
    assert len(admin_a.api.get(LIST, {"page_size": 0}).json()["results"]) == 1
    assert len(admin_a.api.get(LIST, {"page_size": "lots"}).json()["results"]) == 3


# --- session auth -------------------------------------------------------------------------------


def test_a_logged_in_browser_session_reads_the_api(client, tech_a, device_a):
    login(client, tech_a)
    response = client.get(LIST)
    assert response.status_code == 200
    assert response.json()["results"][0]["mac"] == device_a.mac


def test_session_writes_need_the_csrf_token(admin_a):
    api = APIClient(enforce_csrf_checks=True)
    login(api, admin_a)
    refused = api.post(LIST, {"mac": "00-15-65-00-00-03", "location": "Lab"}, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]

    page = api.get("/devices/")
    token = page.cookies["csrftoken"].value
    created = api.post(LIST, {"mac": "00-15-65-00-00-03", "location": "Lab"}, format="json", HTTP_X_CSRFTOKEN=token)
    assert created.status_code == 201
    event = AuditEvent.objects.get(action="device.onboard")
    assert (event.actor_type, event.actor_user) == (ActorType.USER, admin_a.user)


# --- OpenAPI ------------------------------------------------------------------------------------


def test_the_openapi_schema_is_json_unless_yaml_is_asked_for(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert json.loads(response.content)["openapi"].startswith("3.")
    yaml = client.get("/api/schema/", {"format": "yaml"})
    assert yaml["Content-Type"].startswith("application/vnd.oai.openapi") and yaml.content.startswith(b"openapi: 3.")


def test_the_openapi_schema_is_valid_and_describes_the_device_endpoints(anon_api):
    response = anon_api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert set(paths[LIST]) >= {"get", "post"}
    assert set(paths["/api/v1/devices/{id}/"]) >= {"get", "patch", "delete"}
    parameters = {p["name"] for p in paths[LIST]["get"]["parameters"]}
    assert parameters >= {"state", "q", "model", "location", "online", "cursor", "sort"}
    device = schema["components"]["schemas"]["Device"]["properties"]
    assert set(device) >= DESIGN_FIELDS


def test_the_api_docs_work_without_internet(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page.lower()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "the docs must not load anything remote"
    assets = re.findall(r"""(?:src|href)=["']([^"']*drf_spectacular_sidecar[^"']*)["']""", page)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
