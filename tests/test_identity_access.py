"""Who gets what: every page and API endpoint tried as anonymous, viewer, operator and admin.

Healthchecks-style: one table per surface. Pages are tried with each role's signed-in
browser; API endpoints with a token of each scope (the API takes no cookies). A row's
expectation is ``"ok"`` (anything but 401/403/redirect-to-login), ``"login"`` (sent to
sign in), or an exact status.
"""

import pytest
import requests

from tests.identity_people import create_people, local_sign_in, module_server

ROLES = ("anonymous", "viewer", "operator", "admin")
SCOPES = ("none", "read", "submit", "operate", "admin")
SHA = "ab" * 32


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with module_server(tmp_path_factory.mktemp("access")) as server:
        create_people(server, vera="viewer", opal="operator", adam="admin")
        browsers = {
            "anonymous": requests.Session(),
            "viewer": local_sign_in(server, "vera"),
            "operator": local_sign_in(server, "opal"),
            "admin": local_sign_in(server, "adam"),
        }
        tokens = {scope: server.create_token(scope) for scope in SCOPES if scope != "none"}
        worker, secret = server.create_worker("w-access")
        yield server, browsers, tokens, (worker, secret)


def outcome(response: requests.Response) -> str | int:
    if response.status_code in (301, 302, 303) and "/login/" in response.headers.get("Location", ""):
        return "login"
    if response.status_code in (401, 403, 404, 405, 429):
        return response.status_code
    return "ok"


ALL = dict.fromkeys(ROLES, "ok")
SIGNED_IN = {"anonymous": "login", "viewer": "ok", "operator": "ok", "admin": "ok"}
ADMINS = {"anonymous": "login", "viewer": 403, "operator": 403, "admin": "ok"}

PAGES = [
    # (method, path, expectation per role)
    ("GET", "/healthz", ALL),
    ("GET", "/readyz", ALL),
    ("GET", "/metrics", dict.fromkeys(ROLES, 404)),  # bearer BLOBFORGE_METRICS_TOKEN only; a session never opens it
    ("GET", "/accounts/login/", ALL),
    ("GET", "/", SIGNED_IN),
    ("GET", "/accounts/tokens/", SIGNED_IN),
    ("GET", "/admin/", SIGNED_IN),
    ("GET", "/admin/jobs/job/", SIGNED_IN),
    ("GET", "/admin/jobs/blob/", SIGNED_IN),
    ("GET", "/admin/jobs/jobevent/", SIGNED_IN),
    ("GET", "/admin/workers/worker/", SIGNED_IN),
    ("GET", "/admin/accounts/apitoken/", SIGNED_IN),
    ("GET", "/admin/auth/user/", SIGNED_IN),
    ("GET", "/admin/auth/group/", SIGNED_IN),
    ("GET", "/admin/workers/worker/add/", ADMINS),
    ("GET", "/admin/accounts/apitoken/add/", ADMINS),
    ("GET", "/admin/auth/user/add/", ADMINS),
]


@pytest.mark.parametrize(("method", "path", "expected"), PAGES, ids=[f"{m} {p}" for m, p, _ in PAGES])
def test_pages(site, method, path, expected):
    server, browsers, _, _ = site
    got = {
        role: outcome(browsers[role].request(method, server.base_url + path, allow_redirects=False)) for role in ROLES
    }
    assert got == expected


def by_scope(needed: str) -> dict[str, str | int]:
    """No token → 401; a token with ``needed`` (or admin) → ok; any other → 403."""
    return {scope: 401 if scope == "none" else "ok" if scope in (needed, "admin") else 403 for scope in SCOPES}


API = [
    ("GET", "/api/v1/jobs", None, by_scope("read")),
    ("GET", "/api/v1/jobs/999999", None, by_scope("read") | {"read": 404, "admin": 404}),
    ("GET", "/api/v1/stats", None, by_scope("read")),
    ("GET", "/api/v1/workers", None, by_scope("read")),
    ("POST", "/api/v1/blobs", {"sha256": SHA, "size": 10}, by_scope("submit")),
    ("POST", "/api/v1/jobs", {"sha256": SHA}, by_scope("submit")),
    ("POST", f"/api/v1/blobs/{SHA}/multipart", {"size": 10}, by_scope("submit")),
    ("POST", "/api/v1/jobs/999999/retry", None, by_scope("operate") | {"operate": 404, "admin": 404}),
    ("POST", "/api/v1/jobs/999999/cancel", None, by_scope("operate") | {"operate": 404, "admin": 404}),
    ("POST", "/api/v1/jobs/999999/priority", {"priority": 1}, by_scope("operate") | {"operate": 404, "admin": 404}),
    ("POST", "/api/v1/workers/nobody/drain", None, by_scope("operate") | {"operate": 404, "admin": 404}),
    ("POST", "/api/v1/workers/nobody/undrain", None, by_scope("operate") | {"operate": 404, "admin": 404}),
]


@pytest.mark.parametrize(("method", "path", "body", "expected"), API, ids=[f"{m} {p}" for m, p, _, _ in API])
def test_client_api_by_token_scope(site, method, path, body, expected):
    server, _, tokens, _ = site
    got = {}
    for scope in SCOPES:
        headers = {"Authorization": f"Bearer {tokens[scope]}"} if scope != "none" else {}
        got[scope] = outcome(requests.request(method, server.base_url + path, json=body, headers=headers))
    assert got == expected


@pytest.mark.parametrize("path", ["/api/v1/jobs", "/api/v1/stats"])
def test_the_api_takes_tokens_not_browser_sessions(site, path):
    server, browsers, _, _ = site
    assert {role: browsers[role].get(server.base_url + path).status_code for role in ROLES} == dict.fromkeys(ROLES, 401)


WORKER_API = [
    "register",
    "claim",
    "jobs/1/heartbeat",
    "jobs/1/upload-url",
    "jobs/1/complete",
    "jobs/1/fail",
    "jobs/1/release",
    "unregister",
]


@pytest.mark.parametrize("endpoint", WORKER_API)
def test_worker_api_takes_only_worker_credentials(site, endpoint):
    server, browsers, tokens, (worker, _) = site
    url = f"{server.base_url}/api/v1/worker/{endpoint}"
    assert requests.post(url, json={}).status_code == 401
    assert browsers["admin"].post(url, json={}).status_code == 401
    assert requests.post(url, json={}, headers={"Authorization": f"Bearer {tokens['admin']}"}).status_code == 401
    assert (
        requests.post(url, json={}, headers={"X-Worker-ID": worker, "X-Worker-Secret": tokens["admin"]}).status_code
        == 401
    )


@pytest.mark.django_db
@pytest.mark.parametrize("is_async", [False, True], ids=["sync view", "async view"])
def test_role_decorators_guard_sync_and_async_views(django_user_model, is_async):
    """The decorators other apps put on their views: anonymous → sign in, too weak a role → 403."""
    from asgiref.sync import async_to_sync
    from django.contrib.auth.models import AnonymousUser
    from django.http import HttpResponse
    from django.test import RequestFactory

    from accounts.decorators import admin_required, operator_required, viewer_required
    from accounts.roles import assign_role

    def make(decorator):
        if is_async:

            async def view(request):
                return HttpResponse("ok")
        else:

            def view(request):
                return HttpResponse("ok")

        guarded = decorator(view)
        return async_to_sync(guarded) if is_async else guarded

    users = {"anonymous": AnonymousUser()}
    for role in ("viewer", "operator", "admin"):
        users[role] = django_user_model.objects.create_user(f"u-{role}")
        assign_role(users[role], role)

    def answers(decorator) -> dict:
        got = {}
        for name, user in users.items():
            request = RequestFactory().get("/somewhere/?x=1")
            request.user = user

            async def auser(user=user):
                return user

            request.auser = auser
            response = make(decorator)(request)
            got[name] = response["Location"] if response.status_code == 302 else response.status_code
        return got

    login = "/accounts/login/?next=/somewhere/%3Fx%3D1"
    assert answers(viewer_required) == {"anonymous": login, "viewer": 200, "operator": 200, "admin": 200}
    assert answers(operator_required) == {"anonymous": login, "viewer": 403, "operator": 200, "admin": 200}
    assert answers(admin_required) == {"anonymous": login, "viewer": 403, "operator": 403, "admin": 200}
