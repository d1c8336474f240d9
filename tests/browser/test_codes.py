"""Verification codes in a real browser: an admin generates them for a selection, a technician
on a phone finds one by the last digits of a MAC."""

import re

import pytest
from playwright.sync_api import expect

from enrollment.models import VerificationCode
from enrollment.services import verification_code_issue
from portal.models import AuditEvent
from portal.services import Actor
from tests.browser.conftest import SCREENSHOTS, log_in
from tests.factories import PASSWORD, DeviceFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_generates_codes_for_the_selection_and_reads_them_in_the_list(page, screenshot, admin_a, tenant_a):
    desks = [DeviceFactory(tenant=tenant_a, display_name=f"Desk {n}", location="Floor 4") for n in range(3)]
    log_in(page, admin_a, PASSWORD)
    page.goto("/devices/")
    for device in desks[:2]:
        page.get_by_label(f"Select {device.mac}").check()
    page.get_by_role("button", name="Generate codes (2)", exact=True).click()

    expect(page.get_by_text("Generated 2 verification codes, valid for 24 hours.")).to_be_visible()
    for device in desks[:2]:
        cell = page.locator(f'#device-table tr[data-mac="{device.mac}"] td.code-cell')
        expect(cell).to_contain_text(VerificationCode.objects.get(device=device).code)
        expect(cell).to_contain_text("expires in 23 h")
    expect(page.locator(f'#device-table tr[data-mac="{desks[2].mac}"] td.code-cell')).to_have_text("—")
    screenshot("codes-generated")

    # "For all waiting on activation" asks first, then fills the third row too.
    dialogs = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Generate codes for all waiting on activation").click()
    expect(page.get_by_text("Generated 3 verification codes")).to_be_visible()
    assert "all 3 devices waiting on activation" in dialogs[0]
    cell = page.locator(f'#device-table tr[data-mac="{desks[2].mac}"] td.code-cell')
    expect(cell).to_contain_text(VerificationCode.objects.get(device=desks[2]).code)


def test_a_technician_on_a_phone_finds_a_code_by_the_last_digits_of_the_mac(browser, live_server, tech_a, admin_a):
    tenant = tech_a.tenant
    device = DeviceFactory(
        tenant=tenant, mac="00-15-65-4A-7C-E2", location="Building 2 / Room 214", display_name="Room 214"
    )
    DeviceFactory(tenant=tenant, mac="00-15-65-00-7C-E3", location="Building 2 / Room 215")  # almost the same MAC
    code = verification_code_issue(device=device, actor=Actor.of_user(admin_a.user)).code

    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True,
        base_url=live_server.url,
    )
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        log_in(page, tech_a, PASSWORD)
        expect(page).to_have_url(re.compile(r"/lookup/$"))

        page.get_by_label("MAC address, its last digits, or location").press_sequentially("7ce2", delay=40)
        cards = page.locator("article.lookup-card")
        expect(cards).to_have_count(1)
        expect(cards.first).to_have_attribute("data-mac", device.mac)
        expect(cards.first.get_by_label("Verification code")).to_have_text(code)
        expect(cards.first).to_contain_text(re.compile(r"23 h \d+ min left"))
        expect(cards.first).to_contain_text("Room 214")
        expect(page).to_have_url(re.compile(r"[?&]q=7ce2"))
        # Made for the phone's width: nothing to scroll sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "technician-lookup.png"), full_page=True)
    finally:
        context.close()

    viewed = AuditEvent.objects.filter(action="verification_code.view", actor_user=tech_a.user)
    assert list(viewed.values_list("object_id", flat=True)) == [device.pk]
