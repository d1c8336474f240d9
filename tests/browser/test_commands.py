"""An admin restarts three phones from the inventory and watches their statuses turn final."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.factories import PASSWORD, DeviceFactory, device_model, registered
from tests.gateway.sip.sipp import Sipp
from tests.workers import running_worker

pytestmark = [pytest.mark.browser, pytest.mark.sipp, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_an_admin_restarts_a_selection_and_sees_each_phone_answer(page, screenshot, admin_a, tmp_path):
    with (
        running_worker(extra_env={"SIP_T1": "0.05"}),
        Sipp("phone_any_check_sync.xml", workdir=tmp_path, calls=3, linger_ms=500) as sipp,
    ):
        phones = []
        for n, model in enumerate([("Yealink", "T54W"), ("Poly", "VVX 450"), ("Snom", "D735")]):
            device = DeviceFactory(tenant=admin_a.tenant, display_name=f"Desk {n + 1}", model=device_model(*model))
            phones.append(registered(device, contact=f"sip:{device.sip_user}@127.0.0.1:{sipp.port}"))
        DeviceFactory(tenant=admin_a.tenant, display_name="Not selected")

        log_in(page, admin_a, PASSWORD)
        page.goto("/devices/")
        restart = page.get_by_role("button", name="Restart")
        expect(restart).to_be_disabled()
        for device in phones:
            page.locator(f'tr[data-mac="{device.mac}"] input[name=ids]').check()
        expect(restart).to_have_text("Restart (3)")
        dialogs = []
        page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
        restart.click()
        expect(page.get_by_text("Restart requested for 3 phones.")).to_be_visible()
        assert dialogs and "Restart 3 phone(s)?" in dialogs[0]

        # Each selected row polls its own status until the phone's 200 OK makes it final.
        for device in phones:
            expect(page.locator(f'tr[data-mac="{device.mac}"] .command-status')).to_have_attribute(
                "data-status", "sent", timeout=20_000
            )
        expect(page.locator("tr", has_text="Not selected").locator(".command-status")).to_have_count(0)
        screenshot("restart-sent")
        assert sipp.wait() == 0, sipp.report()
