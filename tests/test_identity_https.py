"""Cookies and CSRF behind a TLS-terminating proxy (BLOBFORGE_PUBLIC_URL=https://…) and on plain localhost."""

from urllib.parse import parse_qs, urlparse

import requests

from tests.identity_people import PASSWORD, create_people

PUBLIC = "https://blobforge.test"
PROXY = {"Host": "blobforge.test", "X-Forwarded-Proto": "https"}


def cookie(response: requests.Response, name: str):
    return next(c for c in response.cookies if c.name == name)


def test_behind_https_cookies_are_secure_and_only_the_public_origin_may_post(server_factory, oidc_provider):
    server = server_factory(BLOBFORGE_PUBLIC_URL=PUBLIC, BLOBFORGE_LOCAL_LOGIN="true", **oidc_provider.server_env())
    oidc_provider.start(PUBLIC + "/accounts/oidc/oidc/login/callback/")
    create_people(server, adam="admin")
    login = server.base_url + "/accounts/login/"

    page = requests.get(login, headers=PROXY)
    csrf = cookie(page, "csrftoken")
    assert csrf.secure and csrf.get_nonstandard_attr("SameSite") == "Lax"

    def post(origin: str) -> requests.Response:
        return requests.post(
            login,
            data={"login": "adam", "password": PASSWORD, "csrfmiddlewaretoken": csrf.value},
            headers={**PROXY, "Origin": origin, "Cookie": f"csrftoken={csrf.value}"},
            allow_redirects=False,
        )

    assert post("https://evil.example").status_code == 403
    assert post("http://blobforge.test").status_code == 403  # the plain-http origin is not the public one
    signed_in = post(PUBLIC)
    assert signed_in.status_code == 302
    session = cookie(signed_in, "sessionid")
    assert (
        session.secure
        and session.has_nonstandard_attr("HttpOnly")
        and session.get_nonstandard_attr("SameSite") == "Lax"
    )

    # The OIDC callback registered at the provider is the public https URL, not the proxy's view of it.
    start = server.base_url + "/accounts/oidc/oidc/login/"
    to_provider = requests.post(
        start,
        data={"csrfmiddlewaretoken": csrf.value},
        headers={**PROXY, "Origin": PUBLIC, "Cookie": f"csrftoken={csrf.value}"},
        allow_redirects=False,
    )
    redirect_uri = parse_qs(urlparse(to_provider.headers["Location"]).query)["redirect_uri"]
    assert redirect_uri == [PUBLIC + "/accounts/oidc/oidc/login/callback/"]


def test_on_plain_localhost_cookies_work_without_tls(server):
    page = requests.get(server.base_url + "/accounts/login/")
    csrf = cookie(page, "csrftoken")
    assert not csrf.secure and csrf.get_nonstandard_attr("SameSite") == "Lax"
