"""Who may call what: every worker-protocol and client-API endpoint refuses the wrong caller."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.tokens import create_token, revoke
from jobs import queue
from tests.factories import make_job
from workers import actions

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

WORKER_ENDPOINTS = [
    "register",
    "claim",
    "jobs/{id}/heartbeat",
    "jobs/{id}/upload-url",
    "jobs/{id}/complete",
    "jobs/{id}/fail",
    "jobs/{id}/release",
    "unregister",
]
CLIENT_ENDPOINTS = [  # (method, path, scope it needs)
    ("post", "blobs", "submit"),
    ("post", "jobs", "submit"),
    ("get", "jobs", "read"),
    ("get", "jobs/{id}", "read"),
    ("post", "jobs/{id}/retry", "operate"),
    ("post", "jobs/{id}/cancel", "operate"),
    ("post", "jobs/{id}/priority", "operate"),
    ("get", "stats", "read"),
    ("get", "workers", "read"),
    ("post", "workers/{worker}/drain", "operate"),
    ("post", "workers/{worker}/undrain", "operate"),
]


@pytest.fixture
def world():
    worker, secret = actions.create("alpha")
    other, other_secret = actions.create("beta")
    job = make_job()
    return {"worker": worker, "secret": secret, "other": other, "other_secret": other_secret, "job": job}


def worker_post(path: str, name: str | None, secret: str | None, body: dict | None = None):
    headers = {}
    if name is not None:
        headers["HTTP_X_WORKER_ID"] = name
    if secret is not None:
        headers["HTTP_X_WORKER_SECRET"] = secret
    return Client().post(f"/api/v1/worker/{path}", json.dumps(body or {}), content_type="application/json", **headers)


def client_call(method: str, path: str, token: str | None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    caller = getattr(Client(), method)
    if method == "post":
        return caller(f"/api/v1/{path}", "{}", content_type="application/json", **headers)
    return caller(f"/api/v1/{path}", **headers)


@pytest.mark.parametrize("endpoint", WORKER_ENDPOINTS)
def test_worker_endpoints_refuse_missing_and_wrong_credentials(world, endpoint):
    path = endpoint.format(id=world["job"].pk)
    for name, secret in [
        (None, None),
        ("alpha", None),
        (None, world["secret"]),
        ("alpha", "bfw_wrong"),
        ("nobody", world["secret"]),
        ("alpha", world["other_secret"]),
    ]:
        response = worker_post(path, name, secret)
        assert response.status_code == 401, (path, name, secret, response.content)
        assert response.json()["detail"]


@pytest.mark.parametrize("endpoint", WORKER_ENDPOINTS)
def test_disabled_worker_is_refused_at_once(world, endpoint):
    actions.set_enabled(world["worker"], False, actor="test")
    response = worker_post(endpoint.format(id=world["job"].pk), "alpha", world["secret"])
    assert response.status_code == 403 and "disabled" in response.json()["detail"]


@pytest.mark.parametrize("endpoint", WORKER_ENDPOINTS)
def test_api_token_is_not_a_worker_secret(world, endpoint):
    _, token = create_token("t", ["admin"])
    response = worker_post(endpoint.format(id=world["job"].pk), "alpha", token)
    assert response.status_code == 401


@pytest.mark.parametrize("endpoint", ["heartbeat", "upload-url", "complete", "fail", "release"])
def test_worker_cannot_act_on_another_workers_job(world, endpoint):
    _, lease = queue.claim(world["worker"], ["pdf"])
    body = {"lease": lease.token}
    if endpoint == "upload-url":
        body["size"] = 10
    if endpoint == "complete":
        body["output"] = {"size": 10, "sha256": "a" * 64}
    if endpoint == "fail":
        body["error"] = "x"
    stolen = worker_post(f"jobs/{world['job'].pk}/{endpoint}", "beta", world["other_secret"], body)
    assert stolen.status_code == 403, stolen.content
    guessed = worker_post(
        f"jobs/{world['job'].pk}/{endpoint}", "beta", world["other_secret"], body | {"lease": "guess"}
    )
    assert guessed.status_code == 409
    world["job"].refresh_from_db()
    assert world["job"].status == "running" and world["job"].worker_id == world["worker"].pk


def test_identity_comes_from_headers_not_the_body(world):
    response = worker_post("register", "beta", world["other_secret"], {"worker": "alpha"})
    assert response.status_code == 422, "unknown fields are refused, never used as identity"
    response = worker_post("register", "beta", world["other_secret"], {"hostname": "h"})
    assert response.json()["worker"] == "beta"


@pytest.mark.parametrize(("method", "path", "scope"), CLIENT_ENDPOINTS)
def test_client_endpoints_need_a_live_token_with_the_scope(world, method, path, scope):
    path = path.format(id=world["job"].pk, worker="alpha")
    assert client_call(method, path, None).status_code == 401
    assert client_call(method, path, world["secret"]).status_code == 401, "a worker secret is not an API token"
    assert client_call(method, path, "bf_not-a-real-token").status_code == 401

    other_scopes = [s for s in ("read", "submit", "operate") if s != scope]
    _, lacking = create_token("lacking", other_scopes)
    response = client_call(method, path, lacking)
    assert response.status_code == 403 and scope in response.json()["detail"]

    _, expired = create_token("expired", [scope], expires_at=timezone.now() - timedelta(seconds=1))
    response = client_call(method, path, expired)
    assert response.status_code == 401 and "expired" in response.json()["detail"]

    token, revoked = create_token("revoked", [scope])
    revoke(token)
    response = client_call(method, path, revoked)
    assert response.status_code == 401 and "revoked" in response.json()["detail"]

    _, good = create_token("good", [scope])
    assert client_call(method, path, good).status_code not in (401, 403)


def test_last_used_is_recorded_without_a_write_per_request(world):
    token, plain = create_token("script", ["read"])
    client_call("get", "stats", plain)
    token.refresh_from_db()
    first_use = token.last_used_at
    assert first_use is not None
    client_call("get", "stats", plain)
    token.refresh_from_db()
    assert token.last_used_at == first_use, "a second request within the minute must not write"
