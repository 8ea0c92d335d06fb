"""Every write to an ApiToken: create (shown once), revoke."""

from datetime import datetime

from django.utils import timezone

from accounts.models import SCOPES, ApiToken
from blobforge_site.credentials import API_TOKEN_PREFIX, new_secret


def create_token(
    name: str, scopes: list[str], *, owner=None, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a token; returns it with the plain value, which is never shown again."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(scopes) or 'none'}")
    plain, hashed = new_secret(API_TOKEN_PREFIX)
    token = ApiToken.objects.create(
        name=name, prefix=plain[:10], token_hash=hashed, owner=owner, scopes=sorted(set(scopes)), expires_at=expires_at
    )
    return token, plain


def revoke(token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
