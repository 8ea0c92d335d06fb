"""Real Chromium through Playwright's Python API (Debian's /usr/bin/chromium; never `playwright install`).

``browser_page`` yields a fresh page in its own context (cookies, storage) per test;
``browser_context_factory`` makes more (another user, a dark colour scheme, a phone).
Screenshots go to ``test-artifacts/`` (gitignored) through ``artifact_path``.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("BLOBFORGE_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _ensure_chromium() -> None:
    """Install Debian's chromium when it is missing and apt can; skip (with the reason) otherwise."""
    if CHROMIUM.exists():
        return
    if shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], capture_output=True, timeout=600)
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing and could not be installed (apt-get install -y chromium)")


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium per test module.

    Sync Playwright keeps an event loop running in the main thread while it lives, and
    Django's in-process async views (called through async_to_sync) refuse to run beside
    one: ending Playwright with the module keeps later modules' tests unaffected.
    """
    _ensure_chromium()
    # Sync Playwright runs an event loop in this thread; in-process Django code must not mind.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_context_factory(chromium):
    """``browser_context_factory(**options)``: a new browser context (Playwright's new_context options)."""
    contexts = []

    def make(**options):
        options.setdefault("viewport", {"width": 1280, "height": 900})
        context = chromium.new_context(**options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def browser_page(browser_context_factory):
    """A page in a fresh context (no cookies)."""
    return browser_context_factory().new_page()


@pytest.fixture
def artifact_path():
    """``artifact_path("dashboard-dark.png")`` → a path under test-artifacts/ (created)."""

    def path(name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        return ARTIFACTS / name

    return path


def create_user(server, username: str, password: str, *, role: str = "admin") -> None:
    """A local user on a test server: ``admin`` is a superuser, ``operator``/``viewer`` join that group."""
    code = (
        "from django.contrib.auth.models import Group, User\n"
        f"u = User.objects.create_user({username!r}, password={password!r}, is_superuser={role == 'admin'!r})\n"
        f"u.groups.add(Group.objects.get(name={role!r})) if {role!r} != 'admin' else None\n"
    )
    server.manage("shell", "-c", code)


def sign_in(page, base_url: str, username: str, password: str, next_path: str = "/") -> None:
    """Sign in through allauth's local login form and land on ``next_path``."""
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", password)
    page.locator("form button[type=submit], form input[type=submit]").last.click()
    page.wait_for_url(f"{base_url}{next_path}*")
