"""allauth's OpenID Connect provider, plus a nonce, and reading groups out of the claims.

allauth 65 sends PKCE (``OAUTH_PKCE_ENABLED``) but no ``nonce``. ``OIDCProvider`` is
installed through ``SOCIALACCOUNT_PROVIDERS["openid_connect"]["provider_class"]``: it adds
a fresh nonce to every authorization request and keeps it in allauth's per-flow state;
``check_nonce`` (run by the social account adapter before anyone is signed in) refuses an
ID token that does not carry it back.
"""

import hmac
import secrets

from allauth.socialaccount.models import SocialLogin
from allauth.socialaccount.providers.openid_connect.provider import OpenIDConnectProvider
from django.conf import settings


class OIDCProvider(OpenIDConnectProvider):
    # Where allauth finds this provider's urls (not in accounts/, which has its own).
    package = "allauth.socialaccount.providers.openid_connect"

    def redirect(self, request, process, next_url=None, data=None, **kwargs):
        nonce = secrets.token_urlsafe(32)
        auth_params = dict(kwargs.pop("auth_params", None) or self.get_auth_params())
        auth_params["nonce"] = nonce
        # Extra keyword arguments end up in the stashed state, returned as sociallogin.state.
        return super().redirect(request, process, next_url, data, auth_params=auth_params, nonce=nonce, **kwargs)


class NonceMismatch(Exception):
    pass


def is_oidc(sociallogin: SocialLogin) -> bool:
    return sociallogin.account.get_provider().id == OIDCProvider.id


def check_nonce(sociallogin: SocialLogin) -> None:
    """Raise NonceMismatch unless the ID token carries the nonce this sign-in started with."""
    expected = (sociallogin.state or {}).get("nonce")
    received = (sociallogin.account.extra_data or {}).get("id_token", {}).get("nonce")
    if not expected or not isinstance(received, str) or not hmac.compare_digest(expected, received):
        raise NonceMismatch("the ID token does not carry the nonce of this sign-in")


def claims(sociallogin: SocialLogin) -> dict:
    """ID token claims, overlaid with the userinfo answer (the fresher of the two)."""
    data = sociallogin.account.extra_data or {}
    return {**(data.get("id_token") or {}), **(data.get("userinfo") or {})}


def groups_of(sociallogin: SocialLogin) -> list[str]:
    """The groups in ``BLOBFORGE_OIDC_GROUPS_CLAIM``.

    The claim is looked up by its full name first (namespaced claims such as
    ``https://example.com/groups`` contain dots), then as a dotted path
    (``realm_access.roles``). A list gives its string items; a lone string is one group.
    """
    values = claims(sociallogin)
    name = settings.OIDC_GROUPS_CLAIM
    value = values.get(name)
    if value is None and "." in name:
        value = values
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(item) for item in value if isinstance(item, str | int)]
    return []
