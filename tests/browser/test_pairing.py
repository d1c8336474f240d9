"""Signing a phone in, in real browsers: the admin's "Sign in a user" gives a code; an end user on
a phone types it on the pairing page; the inventory then shows the phone signed in with them."""

import re

import pytest
from playwright.sync_api import expect

from devices.choices import CommandKind, DeviceState
from devices.models import Device, DeviceCommand
from enrollment.services import pairing_request_start
from portal.services import Actor
from tests.browser.conftest import SCREENSHOTS, log_in
from tests.factories import PASSWORD, DeviceFactory, device_model, registered

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("own_cache_keys")]

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


@pytest.fixture
def desk_phone(tenant_a):
    device = DeviceFactory(
        tenant=tenant_a, mac="00-15-65-4A-7C-E2", display_name="Desk 4.12", location="Building 4 / Floor 1",
        model=device_model("Yealink", "T54W"), state=DeviceState.WAITING_FOR_SIGN_IN,
    )
    return registered(device, contact=f"sip:{device.sip_user}@192.0.2.80:5060")


@pytest.fixture
def phone_page(browser, live_server):
    context = browser.new_context(**PHONE, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def test_an_end_user_pairs_with_the_code_from_sign_in_a_user(page, phone_page, screenshot, admin_a, user_a, desk_phone):
    user_a.user.first_name, user_a.user.last_name, user_a.user.phone_number = "Megan", "Bowen", "+14255550100"
    user_a.user.save()

    # The admin: device page › Sign in a user › the pane shows the URL and the code.
    log_in(page, admin_a, PASSWORD)
    page.goto(f"/devices/{desk_phone.pk}/")
    page.get_by_role("button", name="Sign in a user").click()
    pane = page.locator("#pane")
    expect(pane.get_by_role("heading", name="Sign in a user")).to_be_visible()
    expect(pane.locator("[data-verification-url]")).to_have_text(re.compile(r"/pair/$"))
    expect(pane).to_contain_text(re.compile(r"Expires in 1[45] min"))
    code = pane.get_by_label("Pairing code").inner_text()
    assert re.fullmatch(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}", code)
    screenshot("pairing-admin-sign-in-a-user")

    # The end user, on a phone: the pairing URL asks to log in first, then comes back.
    phone_page.goto("/pair/")
    expect(phone_page).to_have_url(re.compile(r"/login/\?next=/pair/$"))
    phone_page.get_by_label("E-mail").fill(user_a.user.username)
    phone_page.get_by_label("Password").fill(PASSWORD)
    phone_page.get_by_role("button", name="Sign in").click()
    expect(phone_page).to_have_url(re.compile(r"/pair/$"))
    # Typed as people type it off a screen: lower case, no dash.
    phone_page.get_by_label("Code on the phone").press_sequentially(code.replace("-", "").lower(), delay=30)
    phone_page.get_by_role("button", name="Sign in the phone").click()

    expect(phone_page.get_by_role("heading", name="Phone signed in")).to_be_visible()
    expect(phone_page).to_have_url(re.compile(r"/pair/done/\d+/$"))
    card = phone_page.locator("article.lookup-card")
    expect(card).to_contain_text("Desk 4.12")
    expect(card).to_contain_text("00-15-65-4A-7C-E2")
    told = phone_page.get_by_text(
        "Your phone will show your name and your number +14255550100 in a moment.")
    expect(told).to_be_visible()
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing to scroll sideways
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone_page.screenshot(path=str(SCREENSHOTS / "pairing-phone-success.png"), full_page=True)

    # Back in the admin's inventory: signed in, with the user's name and number.
    page.goto("/devices/")
    row = page.locator(f'#device-table tr[data-mac="{desk_phone.mac}"]')
    expect(row).to_contain_text("Signed in")
    expect(row).to_contain_text("Megan Bowen")
    expect(row).to_contain_text("+14255550100")
    assert DeviceCommand.objects.filter(device=desk_phone, kind=CommandKind.RESYNC).count() == 1
    screenshot("pairing-inventory-signed-in")

    # And the admin signs the phone out again from its page (after confirming).
    page.goto(f"/devices/{desk_phone.pk}/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(".actions").get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("Megan Bowen was signed out of it.")).to_be_visible()
    expect(page.locator(".page-head .chip").first).to_have_text("Waiting for sign in")
    desk_phone.refresh_from_db()
    assert desk_phone.signed_in_user is None and desk_phone.state == DeviceState.WAITING_FOR_SIGN_IN


def test_a_wrong_code_is_told_plainly_on_the_phone(phone_page, user_a, desk_phone):
    code = pairing_request_start(device=desk_phone, actor=Actor.phone(desk_phone.mac)).user_code
    log_in(phone_page, user_a, PASSWORD)
    expect(phone_page).to_have_url(re.compile(r"/pair/$"))
    box = phone_page.get_by_label("Code on the phone")
    box.fill("BBBB-BBBB" if code != "BBBB-BBBB" else "CCCC-CCCC")
    phone_page.get_by_role("button", name="Sign in the phone").click()
    expect(phone_page.get_by_role("alert")).to_have_text(
        "That code is not right. Check the code on the phone's screen and try again."
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone_page.screenshot(path=str(SCREENSHOTS / "pairing-phone-wrong-code.png"), full_page=True)
    # The link a phone may show comes prefilled: one tap signs in.
    phone_page.goto(f"/pair/?code={code}")
    expect(phone_page.get_by_label("Code on the phone")).to_have_value(code)
    phone_page.get_by_role("button", name="Sign in the phone").click()
    expect(phone_page.get_by_role("heading", name="Phone signed in")).to_be_visible()
    assert Device.objects.get(pk=desk_phone.pk).signed_in_user == user_a.user
