"""Headless Debian Chromium driven by Playwright, against pytest-django's live server."""

import os
from pathlib import Path

import pytest
from django.db import connections

# Playwright's sync API runs an event loop in this thread; Django's ORM, used by the tests for
# setup and checks, would otherwise refuse to run beside it.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (make test does it)")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    # launch() starts from a fresh, temporary user-data dir of its own.
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    # While Playwright's loop runs, this thread counts as async and Django keeps its database
    # connections per context, apart from the thread's own: close them before the loop stops,
    # or they stay open and the test database cannot be dropped at the end of the run.
    connections.close_all()
    playwright.stop()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def screenshot(page):
    def take(name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        # The window as a user sees it, transitions finished (the side pane slides in).
        page.screenshot(path=str(path), animations="disabled")
        return path

    return take


def log_in(page, caller, password):
    page.goto("/login/")
    page.get_by_label("E-mail").fill(caller.user.username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
