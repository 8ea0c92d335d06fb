"""API token authentication (``Authorization: Bearer bf_…``) with scopes."""

from datetime import timedelta

from django.http import HttpRequest
from django.utils import timezone
from ninja.errors import AuthenticationError, HttpError
from ninja.security import HttpBearer

from accounts.models import ApiToken
from accounts.roles import allowed_scopes
from blobforge_site.credentials import API_TOKEN_PREFIX, WORKER_SECRET_PREFIX, digest

LAST_USED_RESOLUTION = timedelta(minutes=1)


def authenticate_token(plain: str, scope: str) -> ApiToken:
    """Return the live token for ``plain`` if it carries ``scope``; 401 or 403 otherwise."""
    if plain.startswith(WORKER_SECRET_PREFIX) or not plain.startswith(API_TOKEN_PREFIX):
        raise AuthenticationError(401, "not an API token (they start with bf_)")
    token = ApiToken.objects.select_related("owner").filter(token_hash=digest(plain)).first()
    now = timezone.now()
    if token is None:
        raise AuthenticationError(401, "unknown API token")
    if token.revoked_at is not None:
        raise AuthenticationError(401, "this API token was revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise AuthenticationError(401, "this API token has expired")
    if token.owner is not None and not token.owner.is_active:
        raise AuthenticationError(401, "the owner of this API token is deactivated")
    if not token.allows(scope):
        raise HttpError(403, f"this token lacks the {scope!r} scope (it has: {', '.join(token.scopes) or 'none'})")
    if token.owner is not None and scope not in allowed_scopes(token.owner):
        # A token acts for its owner: never beyond the role they hold now.
        raise HttpError(
            403,
            f"this token's owner {token.owner.get_username()} no longer holds a role that allows the {scope!r} scope",
        )
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        # Recorded to the minute, so a busy script does not write on every request.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


class TokenAuth(HttpBearer):
    """Bearer token that must carry ``scope`` (``admin`` carries every scope)."""

    def __init__(self, scope: str):
        super().__init__()
        self.scope = scope

    def __call__(self, request: HttpRequest):
        if not request.headers.get("Authorization", "").strip():
            raise AuthenticationError(401, "API token required: Authorization: Bearer bf_…")
        return super().__call__(request)

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken:
        return authenticate_token(token, self.scope)


def actor_for(token: ApiToken) -> str:
    return f"user:{token.owner.get_username()}" if token.owner else f"token:{token.name}"
