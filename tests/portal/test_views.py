"""Portal pages: login and logout, where each role lands, the dashboard, audit log and setup,
tried with an admin, a technician and an end user of tenant A, an admin of tenant B and nobody."""

import pytest
from django.test import Client

from portal.models import AuditEvent
from portal.services import Actor, audit_record
from tests.conftest import login
from tests.factories import PASSWORD, DeviceFactory, UserFactory, registered

ADMIN_PAGES = ["/dashboard/", "/audit/", "/setup/"]


def test_the_login_page_is_served_to_anyone(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b'name="username"' in response.content and b'name="password"' in response.content


def test_a_wrong_password_is_refused_with_a_message(client, admin_a):
    response = client.post("/login/", {"username": admin_a.user.username, "password": "wrong"})
    assert response.status_code == 200
    assert b"enter a correct" in response.content.lower()
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    "caller, landing", [("admin_a", "/dashboard/"), ("tech_a", "/lookup/"), ("user_a", "/pair/")]
)
def test_logging_in_lands_each_role_on_its_own_page(client, request, caller, landing):
    user = request.getfixturevalue(caller).user
    response = client.post("/login/", {"username": user.username, "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == landing
    assert response.status_code == 200


def test_login_follows_a_next_link_on_this_site_only(client, admin_a):
    credentials = {"username": admin_a.user.username, "password": PASSWORD}
    assert client.post("/login/?next=/audit/", {**credentials, "next": "/audit/"})["Location"] == "/audit/"
    client.logout()
    response = client.post("/login/", {**credentials, "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_a_logged_in_user_visiting_login_goes_home(client, admin_a):
    login(client, admin_a)
    assert client.get("/login/")["Location"] == "/"


def test_logout_is_a_post_and_ends_the_session(client, admin_a):
    login(client, admin_a)
    assert client.get("/logout/").status_code == 405
    response = client.post("/logout/")
    assert response["Location"] == "/login/"
    assert client.get("/dashboard/")["Location"].startswith("/login/")


def test_logout_needs_the_csrf_token(admin_a):
    client = Client(enforce_csrf_checks=True)
    login(client, admin_a)
    assert client.post("/logout/").status_code == 403
    token = client.get("/dashboard/").cookies["csrftoken"].value
    assert client.post("/logout/", {"csrfmiddlewaretoken": token}).status_code == 302


def test_anonymous_visitors_of_home_go_to_login(client):
    assert client.get("/")["Location"] == "/login/"


def test_a_user_of_no_organization_is_told_so(client, db):
    user = UserFactory()
    client.login(username=user.username, password=PASSWORD)
    response = client.get("/")
    assert response.status_code == 403
    assert b"not part of an organization" in response.content
    assert client.get("/dashboard/").status_code == 403


@pytest.mark.parametrize("url", [*ADMIN_PAGES, "/pair/"])
def test_anonymous_visitors_are_sent_to_log_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={url}"


@pytest.mark.parametrize("url", ADMIN_PAGES)
@pytest.mark.parametrize("caller, expected", [("admin_a", 200), ("admin_b", 200), ("tech_a", 403), ("user_a", 403)])
def test_admin_pages_are_for_admins(client, request, url, caller, expected):
    assert login(client, request.getfixturevalue(caller)).get(url).status_code == expected


@pytest.mark.parametrize("caller", ["admin_a", "tech_a", "user_a"])
def test_every_member_may_open_the_pairing_page(client, request, caller):
    response = login(client, request.getfixturevalue(caller)).get("/pair/")
    assert response.status_code == 200
    assert b"Sign in a phone" in response.content


def test_end_users_see_no_navigation_to_admin_pages(client, user_a):
    page = login(client, user_a).get("/pair/").content.decode()
    assert 'href="/devices/"' not in page and 'href="/audit/"' not in page


def test_the_dashboard_counts_only_the_tenants_devices(client, admin_a, admin_b):
    DeviceFactory.create_batch(3, tenant=admin_a.tenant)
    registered(DeviceFactory(tenant=admin_a.tenant), contact="sip:x@192.0.2.1")
    DeviceFactory.create_batch(7, tenant=admin_b.tenant)
    response = login(client, admin_a).get("/dashboard/")
    assert response.context["summary"]["total"] == 4
    assert response.context["summary"]["online"] == 1
    assert b"Total devices" in response.content


def test_the_audit_log_shows_the_tenants_events_only(client, admin_a, admin_b):
    audit_record(tenant=admin_a.tenant, actor=Actor.of_user(admin_a.user), action="device.onboard")
    audit_record(tenant=admin_b.tenant, actor=Actor.of_user(admin_b.user), action="device.secret_of_b")
    page = login(client, admin_a).get("/audit/").content.decode()
    assert "device.onboard" in page
    assert "device.secret_of_b" not in page


def test_the_audit_log_pages_by_cursor(client, admin_a, settings):
    for n in range(60):
        audit_record(tenant=admin_a.tenant, actor=Actor.system(), action=f"test.event{n:02d}")
    login(client, admin_a)
    first = client.get("/audit/")
    assert len(first.context["page"].items) == 50
    assert "test.event59" in first.content.decode()
    second = client.get("/audit/", {"cursor": first.context["page"].next_cursor})
    assert [e.action for e in second.context["page"].items] == [f"test.event{n:02d}" for n in range(9, -1, -1)]
    assert client.get("/audit/", {"cursor": "garbage"})["Location"] == "/audit/"


def test_an_admin_switches_the_gateway_off_and_on(client, admin_a):
    login(client, admin_a)
    assert client.post("/setup/gateway/", {"enabled": "0"})["Location"] == "/setup/"
    admin_a.tenant.refresh_from_db()
    assert not admin_a.tenant.sip_gateway_enabled
    assert b"Enable SIP Gateway" in client.get("/setup/").content
    client.post("/setup/gateway/", {"enabled": "1", "next": "/devices/"})
    admin_a.tenant.refresh_from_db()
    assert admin_a.tenant.sip_gateway_enabled
    actions = list(AuditEvent.objects.order_by("id").values_list("action", "actor_user"))
    assert actions == [("tenant.gateway_disabled", admin_a.user.pk), ("tenant.gateway_enabled", admin_a.user.pk)]


def test_the_gateway_switch_ignores_next_links_off_site(client, admin_a):
    login(client, admin_a)
    response = client.post("/setup/gateway/", {"enabled": "1", "next": "https://evil.example/"})
    assert response["Location"] == "/setup/"


@pytest.mark.parametrize("caller, expected", [("tech_a", 403), ("user_a", 403)])
def test_only_admins_switch_the_gateway(client, request, caller, expected):
    caller = request.getfixturevalue(caller)
    assert login(client, caller).post("/setup/gateway/", {"enabled": "0"}).status_code == expected
    caller.tenant.refresh_from_db()
    assert caller.tenant.sip_gateway_enabled


def test_the_gateway_switch_is_a_post_with_a_csrf_token(admin_a):
    client = Client(enforce_csrf_checks=True)
    login(client, admin_a)
    assert client.get("/setup/gateway/").status_code == 405
    assert client.post("/setup/gateway/", {"enabled": "0"}).status_code == 403
    admin_a.tenant.refresh_from_db()
    assert admin_a.tenant.sip_gateway_enabled


def test_a_tenant_with_the_gateway_off_is_shown_how_to_enable_it(client, admin_a):
    admin_a.tenant.sip_gateway_enabled = False
    admin_a.tenant.save()
    login(client, admin_a)
    for url in ("/dashboard/", "/devices/"):
        page = client.get(url).content.decode()
        assert "SIP Gateway is not enabled" in page
        assert 'action="/setup/gateway/"' in page and "Enable SIP Gateway" in page
