"""API tokens and users in the console: a token is shown once, revoking stops it; only admins write."""

import pytest
from django.contrib.auth.models import Group, User

from accounts.auth import AuthenticationError, authenticate_token
from accounts.models import ApiToken

pytestmark = pytest.mark.django_db

TOKENS = "/admin/accounts/apitoken/"


def test_creating_a_token_shows_it_once(role_client):
    client = role_client("admin")
    response = client.post(f"{TOKENS}add/", {"name": "nightly-ingest", "scopes": ["read", "submit"]})
    page = response.content.decode()
    assert "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get(name="nightly-ingest")
    plain = page.split("data-secret>", 1)[1].split("<", 1)[0].strip()
    assert plain.startswith(token.prefix) and token.scopes == ["read", "submit"]
    assert authenticate_token(plain, "submit").pk == token.pk
    assert plain not in client.get(f"{TOKENS}{token.pk}/change/").content.decode()
    assert plain not in client.get(TOKENS).content.decode()


def test_unknown_scope_is_a_form_error(role_client):
    response = role_client("admin").post(f"{TOKENS}add/", {"name": "bad", "scopes": ["root"]})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not ApiToken.objects.filter(name="bad").exists()


def test_revoke_after_confirmation(role_client):
    client = role_client("admin")
    page = client.post(f"{TOKENS}add/", {"name": "ci", "scopes": ["read"]}).content.decode()
    plain = page.split("data-secret>", 1)[1].split("<", 1)[0].strip()
    token = ApiToken.objects.get(name="ci")
    data = {"action": "revoke", "_selected_action": [str(token.pk)], "index": "0", "select_across": "0"}
    assert "Revoke 1 api token?" in client.post(TOKENS, data).content.decode()
    client.post(TOKENS, {**data, "confirmed": "yes"})
    token.refresh_from_db()
    assert token.revoked_at is not None
    with pytest.raises(AuthenticationError):
        authenticate_token(plain, "read")


def test_viewer_and_operator_cannot_create_tokens_or_change_users(role_client):
    victim = User.objects.create_user("victim", password="x")
    for role in ("viewer", "operator"):
        client = role_client(role)
        assert client.get(TOKENS).status_code == 200, "every role reads"
        assert client.get(f"{TOKENS}add/").status_code == 403
        client.post(f"/admin/auth/user/{victim.pk}/change/", {"username": "victim", "is_superuser": "on"})
    assert not User.objects.get(pk=victim.pk).is_superuser


def test_admin_role_manages_users_but_cannot_grant_superuser(role_client):
    client = role_client("admin")
    user = User.objects.create_user("newcomer", password="x")
    operator = Group.objects.get(name="operator")
    response = client.post(
        f"/admin/auth/user/{user.pk}/change/",
        {
            "username": "newcomer",
            "is_active": "on",
            "is_superuser": "on",
            "groups": [operator.pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    user.refresh_from_db()
    assert list(user.groups.values_list("name", flat=True)) == ["operator"]
    assert not user.is_superuser
