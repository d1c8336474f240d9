"""A tenant admin onboards, finds and removes a phone in a real browser; a technician cannot."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from devices.choices import DeviceState
from devices.models import Device
from portal.models import AuditEvent
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, DeviceFactory, UserFactory, device_model, registered

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def inventory(tenant_a):
    """A few phones across vendors and states, so the page looks like a working day."""
    now = timezone.now()
    megan = UserFactory(username="megan.bowen@contoso.example", first_name="Megan", last_name="Bowen")
    specs = [
        ("Reception", "Building 1 / Lobby", ("Yealink", "T54W"), DeviceState.SIGNED_IN, megan, "+1 425 555 0100"),
        ("Boardroom", "Building 1 / Floor 2", ("Poly", "Trio 8800"), DeviceState.WAITING_FOR_SIGN_IN, None, ""),
        ("Warehouse desk", "Warehouse", ("Cisco", "8851"), DeviceState.SIGNED_IN, None, "+1 425 555 0101"),
        ("Kitchen", "Building 2 / Kitchen", ("AudioCodes", "C450HD"), DeviceState.WAITING_ON_ACTIVATION, None, ""),
        ("", "Lab 3", None, DeviceState.WAITING_ON_ACTIVATION, None, ""),
    ]
    devices = []
    for n, (name, location, model, state, user, number) in enumerate(specs):
        device = DeviceFactory(
            tenant=tenant_a, display_name=name, location=location, state=state, signed_in_user=user,
            phone_number=number, model=device_model(*model) if model else None,
            firmware=device_model(*model).min_firmware if model else "",
            last_seen_at=now - timedelta(minutes=7 * n) if state != DeviceState.WAITING_ON_ACTIVATION else None,
        )
        if n < 2:
            registered(device, contact=f"sip:{device.sip_user}@192.0.2.{n + 10}")
        devices.append(device)
    return devices


def test_an_admin_adds_finds_and_deletes_a_phone(page, screenshot, admin_a, inventory):
    log_in(page, admin_a, PASSWORD)
    expect(page).to_have_url(re.compile(r"/dashboard/$"))
    page.locator("nav.sidenav").get_by_role("link", name="SIP devices").click()
    expect(page.get_by_role("heading", name="SIP devices")).to_be_visible()
    expect(page.locator("#device-table tbody tr")).to_have_count(5)

    # Provision devices opens the side pane; Save takes the browser to the new device.
    page.get_by_role("link", name="Provision devices").click()
    pane = page.locator("#pane")
    expect(pane).to_have_class(re.compile(r"\bopen\b"))
    pane.get_by_label("MAC id").fill("00:15:65:ab:cd:ef")
    pane.get_by_label("Location").fill("Lab 3 / Bench 4")
    pane.get_by_label("Display name").fill("Bench phone")
    screenshot("provision-pane")
    pane.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Bench phone")).to_be_visible()
    device = Device.objects.get(mac="00-15-65-AB-CD-EF")
    expect(page).to_have_url(re.compile(rf"/devices/{device.pk}/$"))
    expect(page.get_by_text("was added")).to_be_visible()

    # Back in the inventory, typing part of the MAC narrows the table in place.
    page.locator("nav.sidenav").get_by_role("link", name="SIP devices").click()
    expect(page.locator("#device-table tbody tr")).to_have_count(6)
    screenshot("inventory")
    page.evaluate("window.notReloaded = true")
    page.get_by_label("Search").press_sequentially("ab:cd", delay=30)
    rows = page.locator("#device-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-mac", "00-15-65-AB-CD-EF")
    expect(page).to_have_url(re.compile(r"[?&]q=ab(%3A|:)cd"))
    assert page.evaluate("window.notReloaded") is True, "the table must update without a page load"

    # The detail page, then Delete after the confirmation dialog.
    rows.first.get_by_role("link", name="Bench phone").click()
    expect(page).to_have_url(re.compile(rf"/devices/{device.pk}/$"))
    expect(page.get_by_text("001565abcdef")).to_be_visible()
    screenshot("device-detail")
    dialogs = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(r"/devices/$"))
    expect(page.get_by_text("was removed from the inventory")).to_be_visible()
    assert "00-15-65-AB-CD-EF" in dialogs[0]
    expect(page.locator('#device-table tr[data-mac="00-15-65-AB-CD-EF"]')).to_have_count(0)
    expect(page.locator("#device-table tbody tr")).to_have_count(5)
    assert not Device.objects.filter(mac="00-15-65-AB-CD-EF").exists()
    assert list(AuditEvent.objects.filter(object_id=device.pk).order_by("id").values_list("action", flat=True)) == [
        "device.onboard", "device.delete",
    ]


def test_a_technician_gets_no_way_to_change_the_inventory(page, tech_a, inventory):
    log_in(page, tech_a, PASSWORD)
    # Technicians land on their look-up page (issue 3): nothing else is open to the role.
    expect(page).to_have_url(re.compile(r"/lookup/$"))
    expect(page.get_by_role("link", name="SIP devices")).to_have_count(0)
    for name in ("Provision devices", "Delete", "Export CSV"):
        expect(page.get_by_text(name, exact=False)).to_have_count(0)
    response = page.goto("/devices/")
    assert response.status == 403
    response = page.goto(f"/devices/{inventory[0].pk}/")
    assert response.status == 403
