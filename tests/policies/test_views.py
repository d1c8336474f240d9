"""Policies in the portal: pages for admins only; the device page, the inventory's Policy sync
column and filter, and the dashboard chart."""

import re

import pytest
from django.test import Client

from devices.choices import CommandKind, CommandStatus
from devices.models import Device, DeviceCommand
from policies.models import Policy, PolicyAssignment
from policies.services import policy_assign, policy_create, policy_defaults_ensure
from portal.services import Actor
from tests.conftest import login
from tests.policies.conftest import member, phone

SYSTEM = Actor.system("test")


@pytest.fixture
def sales(tenant_a):
    policy_defaults_ensure(tenant=tenant_a)
    return policy_create(tenant=tenant_a, actor=SYSTEM, kind="calling", name="Sales")


def pages(policy) -> list[str]:
    return ["/policies/", "/policies/new/calling/", f"/policies/{policy.pk}/", f"/policies/{policy.pk}/edit/"]


def test_admins_see_every_policy_page(client, admin_a, sales):
    login(client, admin_a)
    for url in pages(sales):
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("caller", ["tech_a", "user_a"])
def test_technicians_and_end_users_get_no_policy_page(client, request, caller, sales):
    login(client, request.getfixturevalue(caller))
    for url in pages(sales):
        assert client.get(url).status_code == 403, url
    assert client.post(f"/policies/{sales.pk}/delete/").status_code == 403
    assert Policy.objects.filter(pk=sales.pk).exists()


def test_another_tenants_policy_is_a_404(client, admin_b, sales):
    login(client, admin_b)
    for url in pages(sales)[2:]:
        assert client.get(url).status_code == 404, url
    assert client.post(f"/policies/{sales.pk}/default/").status_code == 404
    assert client.post(f"/policies/{sales.pk}/delete/").status_code == 404
    assert Policy.objects.filter(pk=sales.pk, is_default=False).exists()


def test_nobody_is_sent_to_log_in(sales):
    assert Client().get("/policies/")["Location"].startswith("/login/")


def test_the_nav_shows_policies_to_admins_only(client, admin_a, tech_a):
    login(client, admin_a)
    assert b'href="/policies/"' in client.get("/dashboard/").content
    client.logout()
    login(client, tech_a)
    assert b'href="/policies/"' not in client.get("/lookup/").content


def test_the_list_shows_each_kind_with_its_default(client, admin_a, sales):
    body = login(client, admin_a).get("/policies/").content.decode()
    for kind in ("Calling", "IP phone", "Emergency calling"):
        assert f"<h2>{kind}</h2>" in body
    assert body.count("Global (Org-wide default)") == 3
    assert "Sales" in body


def test_creating_a_policy_shows_field_errors_then_saves(client, admin_a, tenant_a):
    login(client, admin_a)
    form = {
        "name": "Front desk",
        "description": "",
        "sign_in_mode": "common_area",
        "hot_desking_timeout": "30",
        "language": "xx",
        "time_zone": "Europe/Paris",
    }
    response = client.post("/policies/new/ip_phone/", form)
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    response = client.post("/policies/new/ip_phone/", {**form, "language": "fr"})
    policy = Policy.objects.get(tenant=tenant_a, name="Front desk")
    assert response["Location"] == f"/policies/{policy.pk}/"
    assert policy.settings == {
        "sign_in_mode": "common_area",
        "hot_desking_timeout": 30,
        "language": "fr",
        "time_zone": "Europe/Paris",
    }


def test_a_forwarding_target_without_forwarding_is_shown_on_its_field(client, admin_a, sales):
    login(client, admin_a)
    response = client.post(f"/policies/{sales.pk}/edit/", {"name": "Sales", "forward_to": "+14255550100"})
    body = response.content.decode()
    assert response.status_code == 200
    assert re.search(r"id_forward_to.*?field-error[^>]*>A forwarding target needs call forwarding allowed", body, re.S)


def test_editing_settings_says_how_many_phones_get_them(client, admin_a, tenant_a, sales):
    device = phone(tenant_a)
    policy_assign(policy=sales, actor=SYSTEM, devices=[device.pk])
    login(client, admin_a)
    response = client.post(
        f"/policies/{sales.pk}/edit/", {"name": "Sales", "call_forwarding": "on", "voicemail": "on"}, follow=True
    )
    assert "1 device will get the change" in response.content.decode()
    assert Policy.objects.get(pk=sales.pk).settings["simultaneous_ring"] is False


def test_assigning_from_the_policy_page_by_user_and_mac(client, admin_a, tenant_a, sales):
    user = member(tenant_a)
    device = phone(tenant_a)
    login(client, admin_a)
    response = client.post(
        f"/policies/{sales.pk}/assign/", {"users": [user.username], "devices": device.mac.replace("-", "")}
    )
    assert response.status_code == 302
    assert set(PolicyAssignment.objects.values_list("device_id", "user_id")) == {(device.pk, None), (None, user.pk)}
    body = client.get(f"/policies/{sales.pk}/").content.decode()
    assert f'data-mac="{device.mac}"' in body and f'data-user="{user.username}"' in body


def test_an_unknown_mac_is_shown_on_the_devices_field(client, admin_a, sales):
    login(client, admin_a)
    response = client.post(f"/policies/{sales.pk}/assign/", {"devices": "00-15-65-FF-FF-FF"})
    assert response.status_code == 400
    assert "No such device: 00-15-65-FF-FF-FF." in response.content.decode()


def test_users_and_an_unknown_mac_together_assign_nothing(client, admin_a, tenant_a, sales):
    user = member(tenant_a)
    login(client, admin_a)
    response = client.post(f"/policies/{sales.pk}/assign/", {"users": [user.username], "devices": "00-15-65-FF-FF-FF"})
    assert response.status_code == 400
    assert "No such device: 00-15-65-FF-FF-FF." in response.content.decode()
    assert not PolicyAssignment.objects.exists()


def test_removing_a_device_from_a_policy(client, admin_a, tenant_a, sales):
    device = phone(tenant_a)
    policy_assign(policy=sales, actor=SYSTEM, devices=[device.pk])
    login(client, admin_a)
    client.post(f"/policies/{sales.pk}/unassign/", {"device": device.pk})
    assert not PolicyAssignment.objects.exists()


def test_making_default_and_deleting(client, admin_a, tenant_a, sales):
    login(client, admin_a)
    old_default = Policy.objects.get(tenant=tenant_a, kind="calling", is_default=True)
    client.post(f"/policies/{sales.pk}/default/")
    assert Policy.objects.get(tenant=tenant_a, kind="calling", is_default=True) == sales
    response = client.post(f"/policies/{sales.pk}/delete/", follow=True)
    assert "Make another policy the default" in response.content.decode()
    client.post(f"/policies/{old_default.pk}/delete/")
    assert not Policy.objects.filter(pk=old_default.pk).exists()


def test_assigning_a_policy_to_a_selection_of_the_inventory(client, admin_a, tenant_a, sales):
    chosen, other = phone(tenant_a), phone(tenant_a)
    login(client, admin_a)
    response = client.post("/policies/assign-devices/", {"ids": [chosen.pk], "next": "/devices/?state=signed_in"})
    assert response.status_code == 200
    assert 'name="policy_calling"' in response.content.decode()
    response = client.post(
        "/policies/assign-devices/",
        {"ids": [chosen.pk], "next": "/devices/?state=signed_in", "confirm": "1", "policy_calling": sales.pk},
    )
    assert response["Location"] == "/devices/?state=signed_in"
    assert list(PolicyAssignment.objects.values_list("device_id", flat=True)) == [chosen.pk]
    assert Device.objects.get(pk=chosen.pk).wanted_version == other.wanted_version + 1


def test_the_device_page_shows_each_effective_setting_and_its_source(client, admin_a, tenant_a, sales):
    user = member(tenant_a)
    german = policy_create(tenant=tenant_a, actor=SYSTEM, kind="ip_phone", name="German", settings={"language": "de"})
    policy_assign(policy=german, actor=SYSTEM, users=[user.username])
    device = phone(tenant_a, user=user)
    policy_assign(policy=sales, actor=SYSTEM, devices=[device.pk])
    body = login(client, admin_a).get(f"/devices/{device.pk}/").content.decode()
    section = body[body.index('id="policies"') :]
    assert re.search(r'data-kind="calling".*?Sales.*?data-source="device"', section, re.S)
    assert re.search(r'data-kind="ip_phone".*?German.*?data-source="user"', section, re.S)
    assert re.search(
        r'data-kind="emergency_calling".*?Global \(Org-wide default\).*?data-source="tenant_default"', section, re.S
    )
    assert '<div data-setting="language"><span class="muted">Phone language:</span> German</div>' in section
    assert 'data-policy-sync="pending"' in section


def _sync_cells(body: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-mac="([^"]+)">.*?data-policy-sync="(\w+)"', body, re.S))


def test_the_inventory_shows_and_filters_the_policy_sync_state(client, admin_a, tenant_a, sales):
    in_sync, pending, failed = phone(tenant_a), phone(tenant_a, in_sync=False), phone(tenant_a, in_sync=False)
    DeviceCommand.objects.create(
        tenant=tenant_a,
        device=failed,
        kind=CommandKind.POLICY_SYNC,
        event="check-sync",
        status=CommandStatus.UNREACHABLE,
        reason="no response (timed out)",
        requested_by_label="t",
    )
    login(client, admin_a)
    body = client.get("/devices/").content.decode()
    assert "<th>Policy sync</th>" in body
    assert _sync_cells(body) == {in_sync.mac: "in_sync", pending.mac: "pending", failed.mac: "failed"}
    for state, device in (("in_sync", in_sync), ("pending", pending), ("failed", failed)):
        assert _sync_cells(client.get("/devices/", {"policy_sync": state}).content.decode()) == {device.mac: state}


def test_the_inventory_page_costs_the_same_queries_for_a_page_of_behind_devices(
    client, admin_a, tenant_a, django_assert_max_num_queries
):
    for _ in range(30):
        phone(tenant_a, in_sync=False)
    login(client, admin_a)
    client.get("/devices/")
    with django_assert_max_num_queries(25):
        client.get("/devices/")


def test_the_dashboard_charts_sync_compliance(client, admin_a, tenant_a):
    phone(tenant_a)
    phone(tenant_a, in_sync=False)
    body = login(client, admin_a).get("/dashboard/").content.decode()
    chart = body[body.index('id="policy-sync-chart"') :]
    assert "50.0% of 2 enrolled phones" in chart
    assert "<svg" in chart and 'href="/devices/?policy_sync=pending"' in chart
