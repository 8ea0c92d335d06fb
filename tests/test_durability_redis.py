"""Scale-out: two server processes on one database and one Redis channel layer. A change made
through one server reaches a dashboard websocket connected to the other."""

import os
import re
import socket
import time
import uuid

import pytest
import redis
import requests
from websockets.sync.client import connect

from tests.components.browser import create_user
from tests.components.durability import ApiClient
from tests.components.server import fresh_postgres_database
from tests.protocol_client import tiny_pdf

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
REDIS_URL = "redis://127.0.0.1:6379/0"
PASSWORD = "correct-horse-battery"


def redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_prefix():
    """A channel-layer prefix of this test's own; its keys are removed afterwards."""
    if not redis_reachable():
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    prefix = f"bftest-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


@pytest.fixture
def two_servers(server_factory, redis_prefix, tmp_path):
    """Two daphne processes sharing one database (PostgreSQL in the PostgreSQL pass), storage and Redis."""
    base = os.environ.get("BLOBFORGE_TEST_POSTGRES_URL")
    (tmp_path / "shared").mkdir()
    shared = (
        {"DATABASE_URL": fresh_postgres_database(base)} if base else {"BLOBFORGE_DATA_DIR": str(tmp_path / "shared")}
    )
    shared |= {"BLOBFORGE_REDIS_URL": REDIS_URL, "BLOBFORGE_REDIS_PREFIX": redis_prefix}
    return server_factory("a", **shared), server_factory("b", **shared)


def sign_in(server, username: str) -> str:
    """Sign in through the login form; returns the Cookie header a browser would send."""
    session = requests.Session()
    session.get(f"{server.base_url}/accounts/login/", timeout=10).raise_for_status()
    response = session.post(
        f"{server.base_url}/accounts/login/",
        data={"login": username, "password": PASSWORD, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": f"{server.base_url}/accounts/login/"},
        timeout=10,
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text[:500]
    return "; ".join(f"{name}={value}" for name, value in session.cookies.items())


def pending_count(message: str) -> int | None:
    found = re.search(r'data-status="pending"><span class="n">(\d+)<', message)
    return int(found.group(1)) if found else None


def test_change_through_one_server_reaches_a_websocket_on_the_other(two_servers, redis_prefix):
    server_a, server_b = two_servers
    create_user(server_a, "watcher", PASSWORD, role="viewer")
    cookie = sign_in(server_b, "watcher")
    ws_url = server_b.base_url.replace("http://", "ws://") + "/ws/live/"
    with connect(ws_url, additional_headers={"Cookie": cookie, "Origin": server_b.base_url}, open_timeout=10) as ws:
        assert pending_count(ws.recv(timeout=10)) == 0
        # The dashboard on server B joined its group through Redis.
        assert list(redis.Redis.from_url(REDIS_URL).scan_iter(f"{redis_prefix}*group*"))

        client_a = ApiClient(server_a, server_a.create_token())
        job_id = client_a.submit(tiny_pdf(1), name="scale-out.pdf")
        wait_for_pending(ws, 1)

        # The socket outlives Redis's blocking-read window (5 s): periodic refreshes keep arriving.
        opened = time.monotonic()
        while time.monotonic() - opened < 7:
            ws.recv(timeout=15)

        assert client_a.call("post", f"jobs/{job_id}/cancel").status_code == 200
        wait_for_pending(ws, 0)


def wait_for_pending(ws, expected: int, timeout: float = 15) -> None:
    """Read dashboard updates until one shows ``expected`` pending jobs."""
    deadline = time.monotonic() + timeout
    seen = None
    while seen != expected:
        assert time.monotonic() < deadline, f"server B's dashboard never showed {expected} pending (last {seen})"
        seen = pending_count(ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
