"""The live dashboard in real Chromium against a real daphne server: changes appear without reload."""

import re

import pytest
from playwright.sync_api import expect

from tests.components.browser import create_user, sign_in
from tests.protocol_client import ProtocolWorker, tiny_output_zip, tiny_pdf

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "correct-horse-battery"
LIVE_DEADLINE_MS = 2000


def count(page, status: str):
    return page.locator(f'#counts [data-status="{status}"] .n')


def submit(server, tmp_path, n: int) -> int:
    pdf = tmp_path / f"report-{n}.pdf"
    pdf.write_bytes(tiny_pdf(n))
    return server.manage_json("submit", str(pdf))["job"]


@pytest.fixture
def dashboard(server, browser_page):
    create_user(server, "root", PASSWORD)
    sign_in(browser_page, server.base_url, "root", PASSWORD)
    expect(browser_page.locator("#connection")).to_have_text("live")
    return browser_page


def test_signed_in_user_sees_the_dashboard(server, dashboard):
    expect(dashboard.locator("#counts h2")).to_have_text("Jobs by state")
    for section in ("#priorities", "#throughput", "#depth", "#workers", "#failures"):
        expect(dashboard.locator(section)).to_be_visible()


def test_anonymous_visitor_is_sent_to_sign_in(server, browser_page):
    browser_page.goto(server.base_url + "/")
    expect(browser_page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))


def test_job_moved_by_the_worker_api_appears_without_reload(server, dashboard, tmp_path):
    job_id = submit(server, tmp_path, 1)
    expect(count(dashboard, "pending")).to_have_text("1", timeout=LIVE_DEADLINE_MS)
    dashboard.evaluate("window.__sameDocument = true")

    worker = ProtocolWorker(server.base_url, *server.create_worker("gpu-1"))
    worker.register()
    claimed = worker.claim()
    assert claimed and claimed.id == job_id
    card = dashboard.locator('#workers [data-worker="gpu-1"]')
    expect(card.locator(f'[data-job="{job_id}"] .doc')).to_have_text(
        f"#{job_id} report-1.pdf", timeout=LIVE_DEADLINE_MS
    )
    expect(count(dashboard, "running")).to_have_text("1", timeout=LIVE_DEADLINE_MS)

    worker.heartbeat(claimed, stage="converting", pages_done=1, pages_total=4).raise_for_status()
    expect(card.locator("[data-stage]")).to_have_text("converting", timeout=LIVE_DEADLINE_MS)
    expect(card.locator(".pages")).to_have_text("1/4 pages", timeout=LIVE_DEADLINE_MS)
    expect(card.locator("progress")).to_have_attribute("value", "25", timeout=LIVE_DEADLINE_MS)

    data = tiny_output_zip()
    worker.upload_output(claimed, data).raise_for_status()
    worker.complete(claimed, data).raise_for_status()
    expect(count(dashboard, "done")).to_have_text("1", timeout=LIVE_DEADLINE_MS)
    expect(count(dashboard, "running")).to_have_text("0", timeout=LIVE_DEADLINE_MS)
    expect(card).to_contain_text("idle", timeout=LIVE_DEADLINE_MS)
    expect(dashboard.locator('[data-metric="jobs-per-min"]')).not_to_have_text("0.00")
    assert dashboard.evaluate("window.__sameDocument") is True, "the page was reloaded"


def test_change_made_by_a_management_command_appears(server, dashboard, tmp_path):
    job_id = submit(server, tmp_path, 2)
    expect(count(dashboard, "pending")).to_have_text("1", timeout=LIVE_DEADLINE_MS)
    server.manage("cancel", str(job_id))
    expect(count(dashboard, "cancelled")).to_have_text("1", timeout=LIVE_DEADLINE_MS)
    expect(count(dashboard, "pending")).to_have_text("0", timeout=LIVE_DEADLINE_MS)
    server.manage("retry", str(job_id))
    expect(count(dashboard, "pending")).to_have_text("1", timeout=LIVE_DEADLINE_MS)


def test_shows_disconnection_and_reconnects_by_itself(server, dashboard, tmp_path):
    server.stop()
    expect(dashboard.locator("#connection")).to_contain_text("disconnected")
    server.start()
    expect(dashboard.locator("#connection")).to_have_text("live", timeout=20_000)
    submit(server, tmp_path, 3)
    expect(count(dashboard, "pending")).to_have_text("1", timeout=LIVE_DEADLINE_MS)


def test_retry_button_on_a_failure_requeues_it(server, dashboard, tmp_path):
    job_id = submit(server, tmp_path, 4)
    worker = ProtocolWorker(server.base_url, *server.create_worker("gpu-2"))
    worker.register()
    worker.fail(worker.claim(), "encrypted PDF", retryable=False).raise_for_status()
    failure = dashboard.locator(f'#failures [data-job="{job_id}"]')
    expect(failure).to_contain_text("encrypted PDF", timeout=LIVE_DEADLINE_MS)
    failure.get_by_role("button", name="Retry").click()
    expect(dashboard.locator("#flash")).to_have_text(f"Job {job_id} is queued again.")
    expect(failure).to_have_count(0, timeout=LIVE_DEADLINE_MS)
    expect(count(dashboard, "pending")).to_have_text("1", timeout=LIVE_DEADLINE_MS)


def test_viewer_sees_no_retry_button(server, browser_page, tmp_path):
    create_user(server, "vera", PASSWORD, role="viewer")
    job_id = submit(server, tmp_path, 5)
    worker = ProtocolWorker(server.base_url, *server.create_worker("gpu-3"))
    worker.register()
    worker.fail(worker.claim(), "broken", retryable=False).raise_for_status()
    sign_in(browser_page, server.base_url, "vera", PASSWORD)
    expect(browser_page.locator(f'#failures [data-job="{job_id}"]')).to_contain_text("broken")
    expect(browser_page.locator("#failures button")).to_have_count(0)


def test_screenshots_light_dark_and_phone(server, dashboard, browser_context_factory, artifact_path, tmp_path):
    submit(server, tmp_path, 6)
    expect(count(dashboard, "pending")).to_have_text("1", timeout=LIVE_DEADLINE_MS)
    dashboard.select_option("#theme", "light")
    light_bg = dashboard.evaluate("getComputedStyle(document.body).backgroundColor")
    dashboard.screenshot(path=artifact_path("dashboard-light.png"), full_page=True)

    dashboard.select_option("#theme", "dark")
    dark_bg = dashboard.evaluate("getComputedStyle(document.body).backgroundColor")
    dashboard.screenshot(path=artifact_path("dashboard-dark.png"), full_page=True)
    assert light_bg != dark_bg

    # "System" follows the operating system's preference.
    phone = browser_context_factory(color_scheme="dark", viewport={"width": 390, "height": 844}, is_mobile=True)
    page = phone.new_page()
    sign_in(page, server.base_url, "root", PASSWORD)
    expect(page.locator("#connection")).to_have_text("live")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == dark_bg
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), "page scrolls sideways"
    page.screenshot(path=artifact_path("dashboard-phone-dark.png"), full_page=True)
