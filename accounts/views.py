"""Token self-service under ``/accounts/tokens/``: list, create (shown once), revoke one's own."""

from datetime import timedelta

from allauth.core.ratelimit import consume_or_429
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts import roles
from accounts.decorators import viewer_required
from accounts.forms import TokenForm
from accounts.models import ApiToken
from accounts.tokens import create_token, revoke


def _tokens_page(
    request: HttpRequest, form: TokenForm, *, created: tuple[ApiToken, str] | None = None, status: int = 200
) -> HttpResponse:
    context = {
        "form": form,
        "tokens": ApiToken.objects.filter(owner=request.user),
        "created": created[0] if created else None,
        "plain": created[1] if created else None,
        "role": roles.role_of(request.user),
        "scopes": roles.allowed_scopes(request.user),
    }
    return render(request, "accounts/tokens.html", context, status=status)


@viewer_required
@never_cache
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    """List one's own tokens; POST creates one, shown in this answer only (never stored in plain)."""
    scopes = roles.allowed_scopes(request.user)
    if request.method == "GET":
        return _tokens_page(request, TokenForm(scopes=scopes))
    limited = consume_or_429(request, action="api_token", user=request.user)
    if limited:
        return limited
    form = TokenForm(request.POST, scopes=scopes)
    if not form.is_valid():
        return _tokens_page(request, form, status=400)
    days = form.cleaned_data["expires_days"]
    created = create_token(
        form.cleaned_data["name"],
        form.cleaned_data["scopes"],
        owner=request.user,
        expires_at=timezone.now() + timedelta(days=days) if days else None,
    )
    return _tokens_page(request, TokenForm(scopes=scopes), created=created, status=201)


@viewer_required
@require_POST
def revoke_token(request: HttpRequest, token_id: int) -> HttpResponse:
    """Revoke one of one's own tokens (someone else's is a 404, not a hint that it exists)."""
    token = get_object_or_404(ApiToken, pk=token_id, owner=request.user)
    revoke(token)
    messages.success(request, f"Token {token.name} ({token.prefix}…) is revoked; it stops working now.")
    return redirect("account_tokens")
