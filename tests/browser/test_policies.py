"""Policies in a real browser: an admin assigns a policy to a selection of the inventory and sees
the Policy sync column turn from In sync to Pending for exactly those phones."""

import pytest
from playwright.sync_api import expect

from devices.choices import DeviceState
from policies.models import PolicyAssignment
from policies.services import policy_create, policy_defaults_ensure
from portal.services import Actor
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, DeviceFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sync_cell(page, device):
    return page.locator(f'#device-table tr[data-mac="{device.mac}"] td.sync-cell [data-policy-sync]')


def test_an_admin_assigns_a_policy_to_a_selection_and_sees_the_sync_column_change(page, screenshot, admin_a, tenant_a):
    policy_defaults_ensure(tenant=tenant_a)
    policy_create(
        tenant=tenant_a,
        actor=Actor.system("test"),
        kind="ip_phone",
        name="Lobby phones",
        settings={"sign_in_mode": "common_area", "language": "fr"},
    )
    phones = [
        DeviceFactory(
            tenant=tenant_a,
            display_name=f"Lobby {n}",
            state=DeviceState.WAITING_FOR_SIGN_IN,
            wanted_version=4,
            synced_version=4,
        )
        for n in range(3)
    ]
    log_in(page, admin_a, PASSWORD)
    page.goto("/devices/")
    for device in phones:
        expect(sync_cell(page, device)).to_have_text("In sync")

    for device in phones[:2]:
        page.get_by_label(f"Select {device.mac}").check()
    page.get_by_role("button", name="Assign policy (2)", exact=True).click()
    expect(page.get_by_role("heading", name="Assign policies to 2 devices")).to_be_visible()
    page.get_by_label("IP phone policy").select_option(label="Lobby phones")
    page.get_by_role("button", name="Assign", exact=True).click()

    expect(page.get_by_text('"Lobby phones" assigned to 2 devices. 2 devices will get the change')).to_be_visible()
    for device in phones[:2]:
        expect(sync_cell(page, device)).to_contain_text("Pending since")
    expect(sync_cell(page, phones[2])).to_have_text("In sync")
    screenshot("policy-assigned-sync-pending")
    assert set(PolicyAssignment.objects.values_list("device_id", flat=True)) == {d.pk for d in phones[:2]}

    # The filter shows the same two.
    page.get_by_label("Policy sync").select_option("pending")
    expect(page.locator("#device-table tbody tr")).to_have_count(2)
    page.locator(f'#device-table tr[data-mac="{phones[0].mac}"] a').first.click()
    expect(page.locator('#policies tr[data-kind="ip_phone"]')).to_contain_text("Lobby phones")
    expect(page.locator('#policies tr[data-kind="ip_phone"]')).to_contain_text("Assigned to this device")
    page.locator("#policies").scroll_into_view_if_needed()
    screenshot("device-policies")

    page.goto("/dashboard/")
    expect(page.locator("#policy-sync-chart")).to_contain_text("33.3% of 3 enrolled phones")
    screenshot("dashboard-policy-sync")
