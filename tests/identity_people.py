"""People for the identity tests: local users holding a role, signed in through allauth's form."""

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.components.server import ServerProcess

PASSWORD = "correct-horse-battery-staple-9"


@contextmanager
def module_server(work_dir: Path, **env: str) -> Iterator[ServerProcess]:
    """One server for a whole test module (starting one costs seconds on a busy machine)."""
    server = ServerProcess(work_dir, env)
    try:
        yield server.start()
    finally:
        server.stop(kill=True)


def create_people(server: ServerProcess, **people: str | None) -> None:
    """``create_people(server, vera="viewer", nora=None)``: local users with that role (None: no role)."""
    code = (
        "import json, sys; from django.contrib.auth import get_user_model; from accounts.roles import assign_role\n"
        f"for name, role in json.loads({json.dumps(json.dumps(people))}).items():\n"
        f"    user = get_user_model().objects.create_user(name, name + '@example.test', {PASSWORD!r})\n"
        "    assign_role(user, role)\n"
    )
    server.manage("shell", "-c", code)


def shell_json(server: ServerProcess, code: str):
    """Run Python in ``manage.py shell`` whose last line prints JSON; return it parsed."""
    return json.loads(server.manage("shell", "-c", code).stdout.strip().splitlines()[-1])


def csrf_of(browser: requests.Session, page: requests.Response) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    return found.group(1) if found else browser.cookies["csrftoken"]


def local_sign_in(server: ServerProcess, username: str, password: str = PASSWORD) -> requests.Session:
    """A browser signed in with allauth's username/password form."""
    browser = requests.Session()
    url = server.base_url + "/accounts/login/"
    page = browser.get(url)
    done = browser.post(
        url,
        data={"login": username, "password": password, "csrfmiddlewaretoken": csrf_of(browser, page)},
        headers={"Referer": url},
        allow_redirects=False,
    )
    assert done.status_code == 302, f"sign-in as {username} failed: {done.status_code} {done.text[:300]}"
    return browser


def create_own_token(
    browser: requests.Session, base_url: str, name: str, scopes: list[str], expires_days: str = ""
) -> requests.Response:
    """Fill in the token page's form as its user would."""
    url = base_url + "/accounts/tokens/"
    page = browser.get(url)
    return browser.post(
        url,
        data={
            "name": name,
            "scopes": scopes,
            "expires_days": expires_days,
            "csrfmiddlewaretoken": csrf_of(browser, page),
        },
        headers={"Referer": url},
    )


def shown_token(page: requests.Response) -> str:
    found = re.search(r"<code class=\"secret\" data-token>(bf_[^<]+)</code>", page.text)
    assert found, f"no new token on the page ({page.status_code}): {page.text[:500]}"
    return found.group(1)
