"""API tokens: self-service at /accounts/tokens/ (never beyond one's role), scopes, expiry, revocation,
and the wall between API tokens and worker secrets. One real server for the module."""

import pytest
import requests

from tests.identity_people import (
    create_own_token,
    create_people,
    csrf_of,
    local_sign_in,
    module_server,
    shell_json,
    shown_token,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with module_server(tmp_path_factory.mktemp("tokens")) as started:
        create_people(started, vera="viewer", opal="operator", adam="admin", olga="operator", rita="viewer", nora=None)
        yield started


def api(server, token: str) -> requests.Session:
    return server.token_session(token)


def test_a_viewer_makes_a_read_token_that_is_shown_once_and_reads_but_cannot_submit(server):
    browser = local_sign_in(server, "vera")

    made = create_own_token(browser, server.base_url, "my reader", ["read"])

    assert made.status_code == 201
    token = shown_token(made)
    assert "shown this once" in made.text and made.headers["Cache-Control"].startswith("max-age=0")
    listing = browser.get(server.base_url + "/accounts/tokens/")
    assert token not in listing.text and token[:10] in listing.text and "my reader" in listing.text
    assert api(server, token).get(server.base_url + "/api/v1/jobs").status_code == 200
    refused = api(server, token).post(server.base_url + "/api/v1/jobs", json={"sha256": "0" * 64})
    assert refused.status_code == 403 and "submit" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("person", "offered", "too_much"),
    [
        ("vera", ["read"], ["submit"]),
        ("opal", ["read", "submit", "operate"], ["admin"]),
        ("adam", ["read", "submit", "operate", "admin"], None),
    ],
)
def test_nobody_can_make_a_token_with_more_than_their_role(server, person, offered, too_much):
    browser = local_sign_in(server, person)
    page = browser.get(server.base_url + "/accounts/tokens/")
    assert [scope for scope in ("read", "submit", "operate", "admin") if f'value="{scope}"' in page.text] == offered
    if too_much is None:
        assert create_own_token(browser, server.base_url, "everything", offered).status_code == 201
        return
    before = shell_json(server, "from accounts.models import ApiToken; print(ApiToken.objects.count())")
    refused = create_own_token(browser, server.base_url, "sneaky", ["read", *too_much])
    assert refused.status_code == 400 and "not one of the available choices" in refused.text
    assert shell_json(server, "from accounts.models import ApiToken; print(ApiToken.objects.count())") == before


def test_people_without_a_role_or_a_session_get_no_token_page(server):
    assert (
        requests.get(server.base_url + "/accounts/tokens/", allow_redirects=False)
        .headers["Location"]
        .startswith("/accounts/login/")
    )
    no_role = local_sign_in(server, "nora")
    page = no_role.get(server.base_url + "/accounts/tokens/")
    assert page.status_code == 403 and "needs the viewer role" in page.text


def test_token_creation_needs_the_csrf_token(server):
    browser = local_sign_in(server, "vera")
    forged = browser.post(server.base_url + "/accounts/tokens/", data={"name": "x", "scopes": ["read"]})
    assert forged.status_code == 403


def test_revoking_ones_own_token_stops_it_at_the_next_request_and_others_tokens_are_out_of_reach(server):
    owner, other = local_sign_in(server, "opal"), local_sign_in(server, "adam")
    token = shown_token(create_own_token(owner, server.base_url, "to revoke", ["read", "operate"]))
    assert api(server, token).get(server.base_url + "/api/v1/stats").status_code == 200
    token_id = shell_json(
        server, f"from accounts.models import ApiToken; print(ApiToken.objects.get(prefix={token[:10]!r}).pk)"
    )
    revoke_url = f"{server.base_url}/accounts/tokens/{token_id}/revoke/"

    page = other.get(server.base_url + "/accounts/tokens/")
    assert other.post(revoke_url, data={"csrfmiddlewaretoken": csrf_of(other, page)}).status_code == 404
    assert api(server, token).get(server.base_url + "/api/v1/stats").status_code == 200

    page = owner.get(server.base_url + "/accounts/tokens/")
    done = owner.post(revoke_url, data={"csrfmiddlewaretoken": csrf_of(owner, page)})
    assert done.status_code == 200 and "is revoked" in done.text
    gone = api(server, token).get(server.base_url + "/api/v1/stats")
    assert gone.status_code == 401 and "revoked" in gone.json()["detail"]


def test_an_expired_token_is_refused(server):
    token = shell_json(
        server,
        (
            "import json; from datetime import timedelta; from django.utils import timezone\n"
            "from accounts.tokens import create_token\n"
            "print(json.dumps(create_token('old', ['read'], expires_at=timezone.now() - timedelta(seconds=1))[1]))"
        ),
    )
    answer = api(server, token).get(server.base_url + "/api/v1/jobs")
    assert answer.status_code == 401 and "expired" in answer.json()["detail"]


def test_a_token_never_outlives_its_owners_role(server):
    browser = local_sign_in(server, "olga")
    token = shown_token(create_own_token(browser, server.base_url, "ops script", ["read", "operate"]))
    assert api(server, token).post(server.base_url + "/api/v1/workers/nobody/drain").status_code == 404

    server.manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; from accounts.roles import "
        "assign_role; assign_role(get_user_model().objects.get(username='olga'), 'viewer')",
    )

    demoted = api(server, token).post(server.base_url + "/api/v1/workers/nobody/drain")
    assert demoted.status_code == 403 and "olga" in demoted.json()["detail"]
    assert api(server, token).get(server.base_url + "/api/v1/jobs").status_code == 200


def test_api_tokens_and_worker_secrets_are_not_interchangeable(server):
    worker, secret = server.create_worker("gpu-1")
    token = server.create_token("read,submit,operate,admin")

    as_worker = requests.post(
        server.base_url + "/api/v1/worker/claim", headers={"X-Worker-ID": worker, "X-Worker-Secret": token}, json={}
    )
    assert as_worker.status_code == 401
    as_client = requests.get(server.base_url + "/api/v1/jobs", headers={"Authorization": f"Bearer {secret}"})
    assert as_client.status_code == 401 and "bf_" in as_client.json()["detail"]
    assert server.worker_session(worker, secret).post(
        server.base_url + "/api/v1/worker/claim", json={}
    ).status_code in (200, 204)


def test_token_creation_is_rate_limited(server):
    browser = local_sign_in(server, "rita")
    answers = [create_own_token(browser, server.base_url, f"t{i}", ["read"]).status_code for i in range(11)]
    assert answers == [201] * 10 + [429]
