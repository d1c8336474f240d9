"""The SIP devices pages: inventory, detail, add, edit, delete, bulk delete; each tried with an
admin, a technician and an end user of tenant A, an admin of tenant B and nobody."""

import pytest
from django.test import Client

from devices.choices import DeviceState
from devices.models import Device
from portal.models import AuditEvent
from tests.conftest import login
from tests.factories import DeviceFactory, device_model

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def device_a(tenant_a):
    return DeviceFactory(tenant=tenant_a, mac="00-15-65-77-88-99", display_name="Lobby phone", location="Lobby")


def as_caller(client, request, caller):
    if caller != "anonymous":
        login(client, request.getfixturevalue(caller))
    return client


def pages_of(device) -> dict[str, str]:
    return {
        "list": "/devices/",
        "detail": f"/devices/{device.pk}/",
        "create": "/devices/new/",
        "edit": f"/devices/{device.pk}/edit/",
    }


# --- who may open what --------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["list", "detail", "create", "edit"])
@pytest.mark.parametrize(
    "caller, expected",
    # Technicians have their own look-up page; nothing of the inventory is open to them.
    [("admin_a", 200), ("tech_a", 403), ("user_a", 403), ("admin_b", None)],
)
def test_who_may_open_each_page(client, request, device_a, page, caller, expected):
    if expected is None:  # another tenant: the lists are its own, A's device does not exist
        expected = 404 if page in ("detail", "edit") else 200
    response = as_caller(client, request, caller).get(pages_of(device_a)[page])
    assert response.status_code == expected
    if response.status_code == 200:  # only A's admin sees A's device, where a page shows one
        assert (device_a.mac.encode() in response.content) == (caller == "admin_a" and page in ("list", "detail"))


@pytest.mark.parametrize("page", ["list", "detail", "create", "edit"])
def test_anonymous_visitors_are_sent_to_log_in(client, device_a, page):
    url = pages_of(device_a)[page]
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={url}"


@pytest.mark.parametrize(
    "caller, expected", [("admin_a", 302), ("tech_a", 403), ("user_a", 403), ("admin_b", 404), ("anonymous", 302)]
)
def test_who_may_delete_a_device(client, request, device_a, caller, expected):
    response = as_caller(client, request, caller).post(f"/devices/{device_a.pk}/delete/")
    assert response.status_code == expected
    assert Device.objects.filter(pk=device_a.pk).exists() == (caller != "admin_a")


@pytest.mark.parametrize("caller, expected", [("tech_a", 403), ("user_a", 403), ("admin_b", 404)])
def test_edits_by_anyone_but_the_admin_change_nothing(client, request, device_a, caller, expected):
    response = as_caller(client, request, caller).post(
        f"/devices/{device_a.pk}/edit/", {"location": "Stolen", "display_name": "x"}
    )
    assert response.status_code == expected
    device_a.refresh_from_db()
    assert device_a.location == "Lobby"
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("caller, expected", [("tech_a", 403), ("user_a", 403)])
def test_only_admins_add_devices(client, request, tenant_a, caller, expected):
    response = as_caller(client, request, caller).post("/devices/new/", {"mac": "00-15-65-00-00-01", "location": "Lab"})
    assert response.status_code == expected
    assert not Device.objects.exists()


# --- the inventory ------------------------------------------------------------------------------


def test_the_inventory_lists_the_tenants_devices_with_summary_and_tools(client, admin_a, device_a, admin_b):
    DeviceFactory(tenant=admin_b.tenant, mac="00-15-65-BB-BB-BB")
    page = login(client, admin_a).get("/devices/").content.decode()
    assert 'data-mac="00-15-65-77-88-99"' in page and "00-15-65-BB-BB-BB" not in page
    assert "Total devices" in page
    for tool in ("Provision devices", "Delete", "Export CSV", 'id="search"', 'name="ids"'):
        assert tool in page, tool
    for tab in ("All", "Waiting on activation", "Waiting for sign in", "Signed in"):
        assert f">{tab}</a>" in page


def test_htmx_requests_get_only_the_table(client, admin_a, device_a):
    response = login(client, admin_a).get("/devices/", {"q": "88:99"}, **HTMX)
    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" not in page and "Total devices" not in page and 'id="filters"' not in page
    assert 'id="device-table"' in page and 'data-mac="00-15-65-77-88-99"' in page


def test_the_list_filters_sorts_and_pages_from_the_url(client, admin_a, tenant_a, settings):
    settings.INVENTORY_PAGE_SIZE = 2
    for n, name in enumerate(["delta", "alpha", "charlie", "bravo"]):
        DeviceFactory(tenant=tenant_a, display_name=name, location="Lab" if n else "Elsewhere",
                      state=DeviceState.SIGNED_IN if n == 3 else DeviceState.WAITING_ON_ACTIVATION)
    login(client, admin_a)

    def names(response):
        return [d.display_name for d in response.context["page"].items]

    first = client.get("/devices/", {"sort": "display_name"})
    assert names(first) == ["alpha", "bravo"]
    second = client.get("/devices/", {"sort": "display_name", "cursor": first.context["page"].next_cursor}, **HTMX)
    assert names(second) == ["charlie", "delta"]
    assert names(client.get("/devices/", {"sort": "-display_name", "location": "lab"})) == ["charlie", "bravo"]
    assert names(client.get("/devices/", {"state": "signed_in"})) == ["bravo"]
    assert names(client.get("/devices/", {"sort": "display_name", "cursor": "stale"})) == ["alpha", "bravo"]
    assert names(client.get("/devices/", {"sort": "no-such-column"})) == ["bravo", "charlie"]


def test_a_bad_filter_value_is_explained_not_a_crash(client, admin_a, device_a):
    response = login(client, admin_a).get("/devices/", {"state": "asleep"})
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content


def test_the_detail_page_shows_the_record_and_its_history(client, admin_a, device_a):
    login(client, admin_a)
    client.post(f"/devices/{device_a.pk}/edit/", {"location": "Floor 2", "display_name": "Lobby phone"})
    page = client.get(f"/devices/{device_a.pk}/").content.decode()
    for text in ("00-15-65-77-88-99", "001565778899", "Floor 2", "device.update", admin_a.user.username):
        assert text in page, text
    assert f'action="/devices/{device_a.pk}/delete/"' in page and "Edit" in page


# --- add, edit, delete --------------------------------------------------------------------------


def test_an_admin_adds_a_device(client, admin_a):
    login(client, admin_a)
    model = device_model("Poly", "VVX 450")
    response = client.post(
        "/devices/new/", {"mac": "00:04:f2:ab:cd:ef", "location": "Lab 3", "display_name": "Bench", "model": model.pk}
    )
    device = Device.objects.get()
    assert response["Location"] == f"/devices/{device.pk}/"
    assert (device.mac, device.location, device.model, device.tenant) == ("00-04-F2-AB-CD-EF", "Lab 3", model,
                                                                           admin_a.tenant)
    event = AuditEvent.objects.get()
    assert (event.action, event.object_id, event.actor_user) == ("device.onboard", device.pk, admin_a.user)
    assert b"was added" in client.get(response["Location"]).content


def test_the_add_form_opens_as_a_side_pane_for_htmx(client, admin_a):
    response = login(client, admin_a).get("/devices/new/", **HTMX)
    page = response.content.decode()
    assert "<html" not in page
    assert 'class="pane-inner"' in page and 'name="mac"' in page and 'name="location"' in page


def test_an_htmx_save_redirects_the_browser_to_the_new_device(client, admin_a):
    response = login(client, admin_a).post("/devices/new/", {"mac": "001565000001", "location": "Lab"}, **HTMX)
    assert response["HX-Redirect"] == f"/devices/{Device.objects.get().pk}/"


@pytest.mark.parametrize(
    "data, message",
    [
        ({"mac": "00-15-65-ZZ", "location": "Lab"}, "is not a MAC address"),
        ({"mac": "00-15-65-77-88-99", "location": "Lab"}, "already in your inventory"),
        ({"mac": "00-15-65-00-00-09", "location": ""}, "This field is required."),
    ],
)
def test_the_add_form_explains_what_is_wrong(client, admin_a, device_a, data, message):
    response = login(client, admin_a).post("/devices/new/", data, **HTMX)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Device.objects.count() == 1


def test_a_mac_of_another_organization_is_refused_without_naming_it(client, admin_b, device_a):
    response = login(client, admin_b).post("/devices/new/", {"mac": "00:15:65:77:88:99", "location": "Lab"})
    page = response.content.decode()
    assert "already onboarded by another organization" in page
    assert device_a.tenant.name not in page


def test_an_admin_edits_a_device(client, admin_a, device_a):
    login(client, admin_a)
    form = client.get(f"/devices/{device_a.pk}/edit/")
    assert form.context["form"].initial["location"] == "Lobby"
    response = client.post(
        f"/devices/{device_a.pk}/edit/", {"location": "Floor 2", "display_name": "Desk", "phone_number": "+1 555 0100"}
    )
    assert response["Location"] == f"/devices/{device_a.pk}/"
    device_a.refresh_from_db()
    assert (device_a.location, device_a.display_name, device_a.phone_number) == ("Floor 2", "Desk", "+1 555 0100")
    assert AuditEvent.objects.get().details["location"] == ["Lobby", "Floor 2"]


def test_an_edit_with_errors_keeps_the_device_unchanged(client, admin_a, device_a):
    response = login(client, admin_a).post(f"/devices/{device_a.pk}/edit/", {"location": "", "display_name": "New"})
    assert response.status_code == 200
    assert b"This field is required." in response.content
    device_a.refresh_from_db()
    assert (device_a.location, device_a.display_name) == ("Lobby", "Lobby phone")


def test_an_admin_deletes_a_device(client, admin_a, device_a):
    login(client, admin_a)
    assert client.get(f"/devices/{device_a.pk}/delete/").status_code == 405
    response = client.post(f"/devices/{device_a.pk}/delete/")
    assert response["Location"] == "/devices/"
    assert not Device.objects.exists()
    assert AuditEvent.objects.get().action == "device.delete"
    assert b"was removed from the inventory" in client.get("/devices/").content


def test_bulk_delete_ignores_another_tenants_ids(client, admin_a, admin_b, device_a):
    mine = DeviceFactory(tenant=admin_a.tenant)
    theirs = DeviceFactory(tenant=admin_b.tenant)
    login(client, admin_a)
    response = client.post(
        "/devices/bulk-delete/", {"ids": [device_a.pk, mine.pk, theirs.pk, "junk"], "next": "/devices/?state=x"}
    )
    assert response["Location"] == "/devices/?state=x"
    assert list(Device.objects.values_list("pk", flat=True)) == [theirs.pk]
    assert sorted(AuditEvent.objects.values_list("object_id", flat=True)) == sorted([device_a.pk, mine.pk])
    assert b"2 devices removed" in client.get("/devices/").content


def test_bulk_delete_never_redirects_off_site(client, admin_a, device_a):
    response = login(client, admin_a).post("/devices/bulk-delete/", {"ids": [device_a.pk], "next": "//evil.example/"})
    assert response["Location"] == "/devices/"


@pytest.mark.parametrize("caller", ["tech_a", "user_a"])
def test_only_admins_bulk_delete(client, request, device_a, caller):
    response = as_caller(client, request, caller).post("/devices/bulk-delete/", {"ids": [device_a.pk]})
    assert response.status_code == 403
    assert Device.objects.filter(pk=device_a.pk).exists()


# --- CSRF ---------------------------------------------------------------------------------------


WRITES = [
    ("/devices/new/", lambda device: {"mac": "00-15-65-00-00-01", "location": "Lab"}),
    ("/devices/{pk}/edit/", lambda device: {"location": "Elsewhere"}),
    ("/devices/{pk}/delete/", lambda device: {}),
    ("/devices/bulk-delete/", lambda device: {"ids": [device.pk]}),
]


@pytest.mark.parametrize("url, data", WRITES, ids=[url for url, _ in WRITES])
def test_every_write_needs_the_csrf_token(admin_a, device_a, url, data):
    client = Client(enforce_csrf_checks=True)
    login(client, admin_a)
    url, data = url.format(pk=device_a.pk), data(device_a)
    assert client.post(url, data).status_code == 403
    assert client.post(url, data, **HTMX).status_code == 403
    device_a.refresh_from_db()
    assert Device.objects.count() == 1 and device_a.location == "Lobby"
    assert not AuditEvent.objects.exists()
    token = client.get("/devices/").cookies["csrftoken"].value
    assert client.post(url, data, HTTP_X_CSRFTOKEN=token).status_code == 302
    assert AuditEvent.objects.exists()
