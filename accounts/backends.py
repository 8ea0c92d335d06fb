"""The one authentication backend: allauth's, with passwords refused when local sign-in is off.

It also serves the admin's own login form, so switching BLOBFORGE_LOCAL_LOGIN off closes
every password form, not only allauth's. OIDC sign-ins do not pass through ``authenticate``.
"""

from allauth.account.auth_backends import AuthenticationBackend as AllauthBackend
from django.conf import settings


class AuthenticationBackend(AllauthBackend):
    def authenticate(self, request, **credentials):
        if not settings.LOCAL_LOGIN:
            return None
        return super().authenticate(request, **credentials)
