"""Local username/password sign-in: on by default without OIDC, refused (not just hidden) when off."""

import pytest
import requests

from tests.identity_people import PASSWORD, create_people, local_sign_in


def try_password(server, username: str, path: str = "/accounts/login/") -> requests.Response:
    """POST a correct password to a sign-in form, with a valid CSRF pair even where no form is shown."""
    browser = requests.Session()
    url = server.base_url + path
    browser.cookies.set("csrftoken", "c" * 32)  # Django accepts a client-chosen CSRF secret of this form
    answer = browser.post(
        url,
        data={"login": username, "username": username, "password": PASSWORD, "csrfmiddlewaretoken": "c" * 32},
        headers={"Referer": url},
        allow_redirects=False,
    )
    assert "CSRF" not in answer.text
    answer.signed_in = browser.get(server.base_url + "/accounts/tokens/", allow_redirects=False).status_code == 200
    return answer


def test_without_oidc_local_sign_in_is_on(server):
    create_people(server, adam="admin")
    browser = local_sign_in(server, "adam")
    assert browser.get(server.base_url + "/admin/").status_code == 200


def test_local_sign_in_switched_off_refuses_every_password_form(server_factory):
    server = server_factory(BLOBFORGE_LOCAL_LOGIN="false")
    create_people(server, adam="admin")
    page = requests.get(server.base_url + "/accounts/login/")
    assert page.status_code == 200 and 'name="password"' not in page.text

    form = try_password(server, "adam")
    assert form.status_code == 403 and not form.signed_in
    assert not try_password(server, "adam", "/admin/login/").signed_in
    assert requests.get(server.base_url + "/accounts/password/reset/").status_code == 404


@pytest.mark.parametrize("local", ["true", ""])
def test_with_oidc_local_sign_in_follows_blobforge_local_login(server_factory, oidc_provider, local):
    server = server_factory(**oidc_provider.server_env(BLOBFORGE_LOCAL_LOGIN=local))
    create_people(server, adam="admin")
    page = requests.get(server.base_url + "/accounts/login/")
    assert "Single sign-on" in page.text
    assert ('name="password"' in page.text) is bool(local)
    assert try_password(server, "adam").signed_in is bool(local)
