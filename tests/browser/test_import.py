"""Provisioning from a CSV in a real browser: a bad file's row errors in the pane, and a 5,000-row
file whose progress bar moves on the job page (a real Celery worker runs it) until the report."""

import re
import time

import pytest
from django.db import transaction
from playwright.sync_api import expect

from devices.models import Device, ImportJob
from tests.browser.conftest import log_in
from tests.factories import PASSWORD, DeviceFactory
from tests.waiting import wait_for_lock_waiters
from tests.workers import running_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("catalog")]

BAD = (
    "MAC id,Location,Display name,Model\n"
    "00:15:65:00:00:01,Lobby,Front desk,T54W\n"
    "00-15-65-ZZ,Lobby,,\n"
    "00:15:65:00:00:01,Lab,,T99\n"
)


def settled(read, *, quiet: float = 1.5, timeout: float = 30) -> int:
    """A positive value that has stopped changing for `quiet` seconds (the progress is reported
    about once a second)."""
    deadline = time.monotonic() + timeout
    value, since = read(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
        elif value and time.monotonic() - since >= quiet:
            return value
    raise AssertionError(f"still changing (or 0) after {timeout} s: {value}")


def open_upload_tab(page):
    page.goto("/devices/")
    page.get_by_role("link", name="+ Provision devices").click()
    page.locator("#pane").get_by_role("tab", name="Upload").click()
    expect(page.locator("#pane").get_by_role("link", name="Template_Provisioning.csv")).to_be_visible()


def test_an_admin_uploads_a_bad_file_and_reads_every_row_error(page, screenshot, admin_a):
    log_in(page, admin_a, PASSWORD)
    open_upload_tab(page)

    page.get_by_label("CSV file").set_input_files(
        {"name": "phones.csv", "mimeType": "text/csv", "buffer": BAD.encode()}
    )
    page.locator("#pane").get_by_role("button", name="Upload").click()

    pane = page.locator("#pane")
    expect(pane.get_by_role("alert")).to_contain_text("Nothing was imported.")
    rows = pane.locator("table.import-errors tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0).locator("td")).to_have_text(["3", "MAC id", '"00-15-65-ZZ" is not a MAC address'])
    expect(rows.nth(1).locator("td")).to_have_text(["4", "MAC id", "00-15-65-00-00-01 is also in row 2"])
    expect(rows.nth(2).locator("td")).to_have_text(["4", "Model", '"T99" is not a known device model'])
    expect(pane.get_by_role("link", name="Download all 3 problems (CSV)")).to_be_visible()
    screenshot("import-bad-file")
    assert not Device.objects.exists()


@pytest.fixture
def import_worker(transactional_db):
    with running_worker(concurrency=1, extra_env={"IMPORT_CHUNK_ROWS": "100"}) as worker:
        yield worker


def mac(n: int) -> str:
    return f"00-15-65-02-{n // 256:02X}-{n % 256:02X}"


def test_a_5000_row_file_shows_its_progress_bar_moving_until_the_report(page, screenshot, admin_a, import_worker):
    rows = "\r\n".join(f"{mac(n)},Floor {n % 12},Desk {n},T54W" for n in range(5_000))
    log_in(page, admin_a, PASSWORD)
    open_upload_tab(page)

    # Hold one of the file's MACs in an open transaction: the worker's write waits on it halfway
    # (devices are written in MAC order, a range at a time), so the page can be seen mid-job.
    with transaction.atomic():
        DeviceFactory(tenant=admin_a.tenant, mac=mac(2_500))
        page.get_by_label("CSV file").set_input_files({
            "name": "5000-phones.csv", "mimeType": "text/csv",
            "buffer": f"MAC id,Location,Display name,Model\r\n{rows}\r\n".encode(),
        })
        page.locator("#pane").get_by_role("button", name="Upload").click()

        page.wait_for_url(re.compile(r"/devices/imports/\d+/$"))
        assert page.url.endswith(f"/devices/imports/{ImportJob.objects.get().pk}/")
        expect(page.locator("#validated")).to_have_attribute("value", "5000", timeout=30_000)
        # The writer blocks on the held row; only then has its count stopped for good.
        wait_for_lock_waiters(1, what="the import's writer waiting on the held MAC", timeout=30)
        written = settled(lambda: ImportJob.objects.values_list("written_rows", flat=True).get())
        assert 0 < written <= 2_500  # the ranges below the held MAC, none past it
        expect(page.locator("[data-progress=written]")).to_have_text(f"{written:,}", timeout=30_000)
        assert page.locator("#written").get_attribute("value") == str(written)
        assert page.locator("#written").get_attribute("max") == "5000"
        screenshot("import-progress")
        transaction.set_rollback(True)  # let the worker go on

    report = page.locator("#import-report")
    expect(report).to_contain_text("5,000 devices added, 0 already onboarded (unchanged).", timeout=30_000)
    expect(page.locator("#written")).to_have_count(0)  # the bar gave way to the report, no reload
    screenshot("import-done")
    assert Device.objects.filter(tenant=admin_a.tenant).count() == 5_000
