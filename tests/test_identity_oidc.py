"""OIDC sign-in against a real provider (npm oidc-provider): users, roles from groups, refusals.

One BlobForge server (daphne) for the module, pointed at the provider; every test signs its
own people in through the whole redirect flow with ``requests``, as a browser would.
"""

import json
import time
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from tests.components.oidc import oidc_site, sign_in

CALLBACK = "/accounts/oidc/oidc/login/callback/"
GROUPS = {
    "BLOBFORGE_OIDC_ALLOWED_GROUPS": "bf-users",
    "BLOBFORGE_OIDC_OPERATOR_GROUPS": "bf-ops",
    "BLOBFORGE_OIDC_ADMIN_GROUPS": "bf-admins,platform",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A BlobForge server that signs people in at the OIDC provider (with group rules)."""
    with oidc_site(tmp_path_factory.mktemp("oidc-site"), **GROUPS, BLOBFORGE_SESSION_SECONDS="900") as started:
        yield started


def user_states(server, *usernames: str) -> dict[str, dict | None]:
    """The users as the database holds them (role, staff flag, email); None for a missing one."""
    code = (
        "import json; from django.contrib.auth import get_user_model; from accounts.roles import role_of\n"
        "users = {u.username: u for u in get_user_model().objects.all()}\n"
        f"print(json.dumps({{name: None if name not in users else {{'role': role_of(users[name]), "
        f"'is_staff': users[name].is_staff, 'email': users[name].email}} for name in {list(usernames)!r}}}))"
    )
    return json.loads(server.manage("shell", "-c", code).stdout.strip().splitlines()[-1])


def whoami(browser: requests.Session, base_url: str) -> str | None:
    """The role the token page offers scopes for, or None when the session is not signed in."""
    page = browser.get(base_url + "/accounts/tokens/", allow_redirects=False)
    if page.status_code == 302:
        return None
    assert page.status_code == 200, page.text[:500]
    return page.text.split("Your role is <strong>", 1)[1].split("<", 1)[0]


def test_first_sign_in_creates_the_user_with_the_role_of_their_groups(site):
    server, provider = site
    people = {  # login: (groups at the provider, expected role)
        "alice": (["bf-users"], "viewer"),
        "oscar": (["bf-users", "bf-ops"], "operator"),
        "ada": (["platform"], "admin"),
        "otto": (["bf-ops"], "operator"),  # operator and admin groups count as allowed
    }
    for login, (groups, role) in people.items():
        provider.set_account(login, groups=groups, email=f"{login}@corp.example")
        browser = requests.Session()

        landed = sign_in(browser, server.base_url, login)

        assert landed.status_code == 200 and landed.url == server.base_url + "/", login
        assert whoami(browser, server.base_url) == role, login
    assert user_states(server, *people) == {
        login: {"role": role, "is_staff": True, "email": f"{login}@corp.example"} for login, (_, role) in people.items()
    }


def test_someone_in_no_allowed_group_gets_a_not_allowed_page_and_no_session(site):
    server, provider = site
    provider.set_account("mallory", groups=["contractors"])
    browser = requests.Session()

    refused = sign_in(browser, server.base_url, "mallory")

    assert refused.status_code == 403
    assert "Not allowed" in refused.text and "not in a group that may use BlobForge" in refused.text
    assert user_states(server, "mallory") == {"mallory": None}
    assert whoami(browser, server.base_url) is None  # whatever cookies it holds, none signs it in
    assert browser.get(server.base_url + "/", allow_redirects=False).status_code == 302


def test_group_changes_at_the_provider_apply_at_the_next_sign_in(site):
    server, provider = site
    provider.set_account("bob", groups=["bf-users", "bf-admins"])
    browser = requests.Session()
    sign_in(browser, server.base_url, "bob")
    assert whoami(browser, server.base_url) == "admin"

    provider.set_account("bob", groups=["bf-users", "bf-ops"])
    assert whoami(browser, server.base_url) == "admin", "roles change at sign-in, not mid-session"
    sign_in(browser, server.base_url, "bob")  # the provider still has a session: no login form this time
    assert whoami(browser, server.base_url) == "operator"

    provider.set_account("bob", groups=["bf-users"])
    sign_in(requests.Session(), server.base_url, "bob")  # another browser; this one keeps its session
    assert whoami(browser, server.base_url) == "viewer", "the role is read per request, so the demotion is seen"

    provider.set_account("bob", groups=[])
    assert sign_in(requests.Session(), server.base_url, "bob").status_code == 403
    assert user_states(server, "bob") == {"bob": {"role": None, "is_staff": False, "email": "bob@example.test"}}
    assert browser.get(server.base_url + "/accounts/tokens/").status_code == 403


def test_the_authorization_request_carries_pkce_and_a_nonce_and_the_public_callback(site):
    server, _ = site
    browser = requests.Session()
    start = server.base_url + "/accounts/oidc/oidc/login/"
    browser.get(start)
    to_provider = browser.post(
        start,
        data={"csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        headers={"Referer": start},
        allow_redirects=False,
    )

    query = parse_qs(urlparse(to_provider.headers["Location"]).query)
    assert query["redirect_uri"] == [server.base_url + CALLBACK]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert len(query["nonce"][0]) >= 32
    assert set(query["scope"][0].split()) == {"openid", "profile", "email", "groups"}


def test_a_code_issued_to_one_sign_in_attempt_is_refused_in_another(site):
    """Replay: PKCE (and the nonce behind it) tie the provider's answer to the attempt that asked."""
    server, provider = site
    provider.set_account("carol", groups=["bf-users"])
    browser = requests.Session()
    start = server.base_url + "/accounts/oidc/oidc/login/"

    def begin() -> str:
        browser.get(start)
        return browser.post(
            start,
            data={"csrfmiddlewaretoken": browser.cookies["csrftoken"]},
            headers={"Referer": start},
            allow_redirects=False,
        ).headers["Location"]

    first = begin()
    second = begin()
    # Let the provider answer the first attempt, but hand the code back with the second's state.
    answer = browser.get(first, allow_redirects=False)
    interaction = answer.headers["Location"]
    answer = browser.post(
        requests.compat.urljoin(first, interaction),
        data={"prompt": "login", "login": "carol", "password": "x"},
        allow_redirects=False,
    )
    while not answer.headers["Location"].startswith(server.base_url):
        answer = browser.get(requests.compat.urljoin(first, answer.headers["Location"]), allow_redirects=False)
    code = parse_qs(urlparse(answer.headers["Location"]).query)["code"][0]
    second_state = parse_qs(urlparse(second).query)["state"][0]

    replayed = browser.get(server.base_url + CALLBACK, params={"code": code, "state": second_state})

    assert replayed.status_code in (401, 403)
    assert whoami(browser, server.base_url) is None


def test_a_session_lasts_the_configured_time(site):
    server, provider = site
    provider.set_account("dana", groups=["bf-users"])
    browser = requests.Session()
    before = time.time()
    sign_in(browser, server.base_url, "dana")

    session_cookie = next(c for c in browser.cookies if c.name == "sessionid")
    assert before + 900 - 5 <= session_cookie.expires <= time.time() + 900 + 5


def test_local_password_sign_in_is_off_when_an_oidc_provider_is_configured(site):
    server, _ = site
    server.manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; "
        "get_user_model().objects.create_superuser('root', 'root@example.test', 'a-long-password-1')",
    )
    browser = requests.Session()
    page = browser.get(server.base_url + "/accounts/login/")
    assert page.status_code == 200 and "Single sign-on" in page.text
    assert 'name="password"' not in page.text

    browser.get(server.base_url + "/accounts/oidc/oidc/login/")  # any form page, for a valid CSRF cookie
    attempt = browser.post(
        server.base_url + "/accounts/login/",
        data={"login": "root", "password": "a-long-password-1", "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        headers={"Referer": server.base_url + "/accounts/login/"},
        allow_redirects=False,
    )
    assert attempt.status_code == 403 and "CSRF" not in attempt.text
    assert whoami(browser, server.base_url) is None


@pytest.mark.parametrize(
    ("started_with", "id_token", "accepted"),
    [
        ("n-1", {"nonce": "n-1"}, True),
        ("n-1", {"nonce": "n-2"}, False),
        ("n-1", {}, False),
        (None, {"nonce": "n-1"}, False),
    ],
)
def test_the_nonce_must_come_back_in_the_id_token(started_with, id_token, accepted):
    """The real flow above shows a matching nonce is accepted; here, the answers a provider must not give."""
    from allauth.socialaccount.models import SocialAccount, SocialLogin

    from accounts.oidc import NonceMismatch, check_nonce

    login = SocialLogin(account=SocialAccount(provider="oidc", uid="x", extra_data={"id_token": id_token}))
    login.state = {"nonce": started_with} if started_with else {}
    if accepted:
        check_nonce(login)
    else:
        with pytest.raises(NonceMismatch):
            check_nonce(login)
