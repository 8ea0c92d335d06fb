"""Role checks for views: ``@viewer_required``, ``@operator_required``, ``@admin_required``.

Anonymous visitors are sent to the sign-in page (with ``?next=``); a signed-in person
whose role is too weak gets a 403 page that says which role the page needs. Works on
sync and async views.
"""

from collections.abc import Callable
from functools import wraps
from inspect import iscoroutinefunction

from asgiref.sync import sync_to_async
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts import roles


def refused(request: HttpRequest, title: str, message: str) -> HttpResponse:
    """A plain 403 page: what happened and what to do about it."""
    return render(request, "accounts/refused.html", {"title": title, "message": message}, status=403)


def _refusal(request: HttpRequest, user, needed: str) -> HttpResponse | None:
    """None when ``user`` may see a page that needs ``needed``; else the answer to give instead."""
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    current = roles.role_of(user)
    if roles.RANK[current] >= roles.RANK[needed]:
        return None
    held = f"your role is {current}" if current else "you have no role yet"
    return refused(request, "Not allowed", f"This page needs the {needed} role; {held}.")


def role_required(needed: str) -> Callable:
    if needed not in roles.ROLES:
        raise ValueError(f"unknown role {needed!r}")

    def decorator(view: Callable) -> Callable:
        if iscoroutinefunction(view):

            @wraps(view)
            async def async_wrapped(request: HttpRequest, *args, **kwargs):
                user = await request.auser()
                refusal = await sync_to_async(_refusal)(request, user, needed)
                return refusal or await view(request, *args, **kwargs)

            return async_wrapped

        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs):
            return _refusal(request, request.user, needed) or view(request, *args, **kwargs)

        return wrapped

    return decorator


viewer_required = role_required(roles.VIEWER)
operator_required = role_required(roles.OPERATOR)
admin_required = role_required(roles.ADMIN)
