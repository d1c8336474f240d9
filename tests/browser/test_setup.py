"""The Setup page in a real browser: an admin reads the provisioning URL and regenerates it,
confirming first; a phone then fetches its config from the new URL, never the old one."""

import urllib.error
import urllib.request

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from devices.choices import DeviceState
from portal.models import AuditEvent, Tenant
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, DeviceFactory, device_model

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def phone_fetch(url: str) -> int:
    request = urllib.request.Request(url, headers={"User-Agent": "Yealink SIP-T54W 96.86.0.70 00:15:65:12:34:56"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_an_admin_regenerates_the_provisioning_url_and_phones_follow_the_new_one(
    page, screenshot, admin_a, tenant_a, live_server, settings
):
    settings.PUBLIC_BASE_URL = live_server.url
    DeviceFactory(tenant=tenant_a, mac="00-15-65-12-34-56", model=device_model("Yealink", "T54W"),
                  state=DeviceState.WAITING_FOR_SIGN_IN)
    log_in(page, admin_a, PASSWORD)
    page.goto("/setup/")
    old_url = f"{live_server.url}/provision/{tenant_a.provisioning_key}/"
    expect(page.locator("#provisioning-url")).to_have_text(old_url)
    expect(page.locator("#dhcp")).to_contain_text(f"{old_url}$PSN.xml")
    screenshot("setup")
    assert phone_fetch(old_url + "001565123456.cfg") == 200

    # Every POST the browser makes to regenerate the key, in the order it makes them.
    def regenerates(request) -> bool:
        return request.method == "POST" and request.url.endswith("/setup/provisioning-key/")

    regenerations = []
    page.on("request", lambda request: regenerations.append(request) if regenerates(request) else None)
    # A mark on this document: it is gone if the page navigates (the form was submitted).
    page.evaluate("window.__stillTheSamePage = true")

    # Dismissing the question changes nothing; accepting it retires the old URL.
    dismissed = []
    page.once("dialog", lambda dialog: (dismissed.append(dialog.message), dialog.dismiss()))
    # The dismissed click must not send the form, not even a moment later: wait a second for it to.
    with pytest.raises(PlaywrightTimeoutError), page.expect_request(regenerates, timeout=1_000):
        page.get_by_role("button", name="Regenerate provisioning key").click()
    assert "Regenerate the provisioning key?" in dismissed[0]
    assert page.evaluate("() => new Promise(done => setTimeout(() => done(window.__stillTheSamePage), 0))") is True
    assert regenerations == []
    expect(page.locator("#provisioning-url")).to_have_text(old_url)
    assert Tenant.objects.get(pk=tenant_a.pk).provisioning_key == tenant_a.provisioning_key
    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Regenerate provisioning key").click()
    expect(page.get_by_text("New provisioning URL created.")).to_have_count(1)
    expect(page.get_by_text("New provisioning URL created.")).to_be_visible()
    assert "Regenerate the provisioning key?" in questions[0]
    # Any POST of the dismissed click was sent before the accepted one, whose answer is now on
    # screen: exactly one request and one regeneration in all.
    assert len(regenerations) == 1
    assert AuditEvent.objects.filter(action="tenant.provisioning_key_regenerate").count() == 1

    new_url = f"{live_server.url}/provision/{Tenant.objects.get(pk=tenant_a.pk).provisioning_key}/"
    assert new_url != old_url
    expect(page.locator("#provisioning-url")).to_have_text(new_url)
    assert phone_fetch(old_url + "001565123456.cfg") == 404
    assert phone_fetch(new_url + "001565123456.cfg") == 200
