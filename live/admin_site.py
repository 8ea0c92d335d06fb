"""The operator console's admin site: access by role (accounts.roles), not by Django's per-model permissions.

Viewers see every model and change nothing; operators may run the job and drain
actions; admins manage workers, tokens and users. Model admins inherit ``RoleAdmin``
and declare their actions with ``allowed_permissions=("operate",)`` or ``("administer",)``.
"""

from collections.abc import Callable, Iterable
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext_lazy

from accounts.roles import ADMIN, OPERATOR, RANK, VIEWER, role_of


def request_role(request: HttpRequest) -> str | None:
    """The user's role, looked up once per request (the admin asks many times per page)."""
    if not hasattr(request, "_blobforge_role"):
        request._blobforge_role = role_of(getattr(request, "user", None))
    return request._blobforge_role


def request_has_role(request: HttpRequest, needed: str) -> bool:
    return RANK[request_role(request)] >= RANK[needed]


def actor_of(request: HttpRequest) -> str:
    """How the queue's event history names a console user."""
    return f"user:{request.user.get_username()}"


class ConsoleAdminSite(admin.AdminSite):
    site_header = gettext_lazy("BlobForge console")
    site_title = gettext_lazy("BlobForge")
    index_title = gettext_lazy("Operator console")
    site_url = "/"

    def has_permission(self, request: HttpRequest) -> bool:
        """Any role opens the console; is_staff plays no part."""
        return request.user.is_active and request_has_role(request, VIEWER)

    def login(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        """Sign-in lives at /accounts/login/ (allauth: local or OIDC)."""
        target = request.GET.get("next") or request.path
        if request.user.is_authenticated:
            # Signed in but without a role: the admin's own login page would loop.
            return TemplateResponse(request, "live/no_role.html", status=403)
        return HttpResponseRedirect("/accounts/login/?" + urlencode({"next": target}))


class RoleAdmin(admin.ModelAdmin):
    """Read-only for every role; subclasses open what their role may do."""

    show_full_result_count = False

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request_has_role(request, VIEWER)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request_has_role(request, VIEWER)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return request_has_role(request, OPERATOR)

    def has_administer_permission(self, request: HttpRequest) -> bool:
        return request_has_role(request, ADMIN)


def describe_selection(request: HttpRequest, count: int, noun: str) -> str:
    """How the jobs of an action were chosen, in words for the confirmation page."""
    if request.POST.get("select_across") == "1":
        params = {k: v for k, v in request.GET.items() if k not in ("p", "o")}
        how = ", ".join(f"{k.replace('__exact', '').replace('__id', '')} = {v}" for k, v in params.items() if k != "q")
        if params.get("q"):
            how = f"{how}, search “{params['q']}”" if how else f"search “{params['q']}”"
        return f"all {count} {noun} matching {how}" if how else f"all {count} {noun} (no filter)"
    return f"{count} {noun} ticked on the list"


def confirm_action(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    title: str,
    verb: str,
    run: Callable[[QuerySet], HttpResponse | None],
    extra_fields: Iterable[tuple[str, str, list[tuple[str, str]]]] = (),
    danger: bool = False,
) -> HttpResponse | None:
    """Show a confirmation page for an admin action; run it when that page is posted back.

    The page states the exact number of objects and how they were selected. ``extra_fields``
    are ``(name, label, choices)`` selects shown on the page (e.g. the new priority).
    """
    if request.POST.get("confirmed") == "yes":
        return run(queryset)
    meta = modeladmin.model._meta
    count = queryset.count()
    noun = meta.verbose_name if count == 1 else meta.verbose_name_plural
    if count == 0:
        modeladmin.message_user(request, f"No {meta.verbose_name_plural} selected; nothing done.", messages.WARNING)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "verb": verb,
        "danger": danger,
        "count": count,
        "selection": describe_selection(request, count, noun),
        "sample": list(queryset[:20]),
        "opts": meta,
        "action": request.POST.get("action", ""),
        "select_across": request.POST.get("select_across", "0"),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "extra_fields": list(extra_fields),
        "query_string": request.META.get("QUERY_STRING", ""),
    }
    return TemplateResponse(request, "admin/blobforge/confirm_action.html", context)


def report(modeladmin: admin.ModelAdmin, request: HttpRequest, done: int, verb: str, refused: list[str]) -> None:
    """One success message and, when some were refused, one warning naming why (first few)."""
    meta = modeladmin.model._meta
    noun = meta.verbose_name if done == 1 else meta.verbose_name_plural
    if done:
        modeladmin.message_user(request, f"{verb} {done} {noun}.", messages.SUCCESS)
    if refused:
        shown = "; ".join(refused[:5]) + (f"; and {len(refused) - 5} more" if len(refused) > 5 else "")
        modeladmin.message_user(request, f"Refused {len(refused)}: {shown}", messages.WARNING)


def shown_once(
    modeladmin: admin.ModelAdmin, request: HttpRequest, *, title: str, items: list[tuple[str, str]], note: str
) -> HttpResponse:
    """The one page that shows a new secret: ``items`` are (heading, text to copy). Never cached."""
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "opts": modeladmin.model._meta,
        "items": items,
        "note": note,
    }
    response = TemplateResponse(request, "admin/blobforge/shown_once.html", context)
    add_never_cache_headers(response)
    return response
