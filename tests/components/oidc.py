"""A real OpenID Connect provider for tests: npm ``oidc-provider`` run by ``tests/oidc/provider.mjs``.

``oidc_provider`` picks a port first, so a BlobForge server can be started with
``provider.server_env()`` (its issuer URL), and the provider is then started with that
server's callback URL as its one redirect URI (allauth fetches discovery lazily, at
the first sign-in). Accounts and their groups live in a JSON file the provider re-reads
on every lookup: ``provider.set_account("alice", groups=[...])`` takes effect at once.
``sign_in`` drives the whole redirect flow with ``requests``, as a browser would.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

from tests.components.ports import free_port, wait_for_port
from tests.components.server import ServerProcess

OIDC_DIR = Path(__file__).resolve().parents[1] / "oidc"
CLIENT_ID = "blobforge-test"
CLIENT_SECRET = "blobforge-test-client-secret"


def ensure_node_modules() -> None:
    """Install the provider's pinned npm packages once (``npm ci``) if they are missing."""
    if (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        return
    if not shutil.which("npm"):
        pytest.skip("npm is not installed: the OIDC tests need node and npm")
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"], cwd=OIDC_DIR, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise RuntimeError(f"npm ci in {OIDC_DIR} failed:\n{done.stdout}\n{done.stderr}")


class OidcProvider:
    """One oidc-provider process with one static client and file-backed accounts."""

    def __init__(self, work_dir: Path):
        work_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.accounts_file = work_dir / "accounts.json"
        self.accounts: dict[str, dict] = {}
        self._write_accounts()
        self.log_path = work_dir / "oidc-provider.log"
        self.process: subprocess.Popen | None = None

    def server_env(self, **extra: str) -> dict[str, str]:
        """The BLOBFORGE_OIDC_* variables that point a BlobForge server at this provider."""
        return {
            "BLOBFORGE_OIDC_ISSUER": self.issuer,
            "BLOBFORGE_OIDC_CLIENT_ID": CLIENT_ID,
            "BLOBFORGE_OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "BLOBFORGE_OIDC_SCOPES": "openid,profile,email,groups",
            **extra,
        }

    def set_account(self, login: str, *, groups: list[str], email: str = "") -> None:
        self.accounts[login] = {"groups": groups, "email": email or f"{login}@example.test", "name": login.title()}
        self._write_accounts()

    def _write_accounts(self) -> None:
        tmp = self.accounts_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.accounts))
        tmp.replace(self.accounts_file)

    def start(self, redirect_uri: str, timeout: float = 30) -> "OidcProvider":
        ensure_node_modules()
        env = {
            **os.environ,
            "PORT": str(self.port),
            "CLIENT_ID": CLIENT_ID,
            "CLIENT_SECRET": CLIENT_SECRET,
            "REDIRECT_URI": redirect_uri,
            "ACCOUNTS_FILE": str(self.accounts_file),
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            ["node", str(OIDC_DIR / "provider.mjs")],
            cwd=OIDC_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, timeout, self.process)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(self.issuer + "/.well-known/openid-configuration", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"oidc-provider discovery did not answer within {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""


def sign_in(
    browser: requests.Session, base_url: str, login: str, provider_id: str = "oidc", next_url: str = "/"
) -> requests.Response:
    """Sign in through the provider as ``login``, as a browser would; returns BlobForge's last answer.

    POSTs allauth's provider login (CSRF token from its page), follows the redirect to
    the provider, fills the provider's login form when it asks (it does not when the
    provider still has a session), and follows the code back to BlobForge's callback.
    """
    start = f"{base_url}/accounts/oidc/{provider_id}/login/?next={next_url}"
    page = browser.get(start)
    page.raise_for_status()
    csrf = browser.cookies.get("csrftoken") or _csrf_from(page.text)
    response = browser.post(
        start, data={"csrfmiddlewaretoken": csrf}, headers={"Referer": start}, allow_redirects=False
    )
    for _ in range(20):
        if response.status_code not in (301, 302, 303, 307, 308):
            return response
        location = urljoin(response.url, response.headers["Location"])
        if location.startswith(base_url) and "/login/callback/" not in location:
            return browser.get(location)
        if re.search(r"/interaction/[^/]+/?$", location):
            browser.get(location).raise_for_status()
            response = browser.post(
                location, data={"prompt": "login", "login": login, "password": "x"}, allow_redirects=False
            )
            continue
        response = browser.get(location, allow_redirects=False)
    raise AssertionError(f"sign-in as {login} did not finish: last answer {response.status_code} {response.url}")


def _csrf_from(html: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert found, "no CSRF token on the sign-in page"
    return found.group(1)


@contextmanager
def oidc_site(work_dir: Path, **env: str) -> Iterator[tuple[ServerProcess, OidcProvider]]:
    """A BlobForge server that signs people in at a fresh provider; both stopped on exit.

    For module-scoped fixtures (starting a server costs seconds); ``env`` adds to the
    server's BLOBFORGE_OIDC_* variables.
    """
    provider = OidcProvider(work_dir / "oidc")
    server = ServerProcess(work_dir / "server", provider.server_env(**env))
    provider_id = env.get("BLOBFORGE_OIDC_PROVIDER_ID", "oidc")
    try:
        server.start()
        provider.start(f"{server.base_url}/accounts/oidc/{provider_id}/login/callback/")
        yield server, provider
    finally:
        server.stop(kill=True)
        provider.stop()


@pytest.fixture
def oidc_provider(tmp_path):
    """An OIDC provider (not yet started: call ``.start(redirect_uri)``), stopped after the test."""
    provider = OidcProvider(tmp_path / "oidc")
    yield provider
    provider.stop()
