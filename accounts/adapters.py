"""allauth adapters: no self sign-up; an OIDC sign-in checks the nonce and the allowed groups,
then makes the user's role match their groups at the provider (every sign-in, not only the first).
"""

import logging

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings

from accounts import oidc, roles
from accounts.decorators import refused

log = logging.getLogger(__name__)


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        """Local accounts come from ``createsuperuser`` or the admin, never from a sign-up form."""
        return False


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request, sociallogin) -> bool:
        return bool(settings.OIDC_ISSUER)

    def pre_social_login(self, request, sociallogin) -> None:
        """Runs before anyone is signed in: refuse here and no session is ever created."""
        if not oidc.is_oidc(sociallogin):
            return
        try:
            oidc.check_nonce(sociallogin)
        except oidc.NonceMismatch:
            log.warning("OIDC sign-in refused: nonce mismatch (uid %s)", sociallogin.account.uid)
            raise ImmediateHttpResponse(
                refused(
                    request,
                    "Sign-in failed",
                    "The identity provider's answer did not belong to this sign-in. Please start again.",
                )
            ) from None
        groups = oidc.groups_of(sociallogin)
        if not roles.groups_allowed(groups):
            if sociallogin.is_existing:
                roles.assign_role(sociallogin.user, None)
            log.info("OIDC sign-in refused: %s is in none of the allowed groups", sociallogin.account.uid)
            raise ImmediateHttpResponse(
                refused(
                    request,
                    "Not allowed",
                    "You signed in at your identity provider, but your account is "
                    "not in a group that may use BlobForge. Ask your administrator to add you.",
                )
            )
        if sociallogin.is_existing:
            roles.assign_role(sociallogin.user, roles.role_for_groups(groups))

    def save_user(self, request, sociallogin, form=None):
        """A first sign-in creates the user; give them the role of their groups straight away."""
        user = super().save_user(request, sociallogin, form)
        if oidc.is_oidc(sociallogin):
            roles.assign_role(user, roles.role_for_groups(oidc.groups_of(sociallogin)))
        return user
