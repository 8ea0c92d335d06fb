"""Console for API tokens, users and groups (admins write; every role reads)."""

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts import tokens
from accounts.models import SCOPES, ApiToken
from accounts.roles import ADMIN, VIEWER
from live.admin_site import RoleAdmin, confirm_action, report, request_has_role, shown_once


class ApiTokenAddForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(s, s) for s in SCOPES],
        widget=forms.CheckboxSelectMultiple,
        help_text="read: list and download; submit: queue documents; operate: retry, cancel, reprioritize; admin: all.",
    )

    class Meta:
        model = ApiToken
        fields = ("name", "scopes", "owner", "expires_at")


@admin.register(ApiToken)
class ApiTokenAdmin(RoleAdmin):
    list_display = ("name", "prefix", "owner", "scopes", "state", "created_at", "expires_at", "last_used_at")
    list_select_related = ("owner",)
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "owner__username")
    actions = ("revoke",)
    view_fields = ("name", "prefix", "owner", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at")

    @admin.display(description="state")
    def state(self, token: ApiToken) -> str:
        if token.revoked_at:
            return "revoked"
        if token.expires_at and token.expires_at <= timezone.now():
            return "expired"
        return "active"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_administer_permission(request)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ApiTokenAddForm.Meta.fields if obj is None else self.view_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.view_fields

    def save_model(self, request: HttpRequest, obj: ApiToken, form, change: bool) -> None:
        data = form.cleaned_data
        token, plain = tokens.create_token(
            data["name"], list(data["scopes"]), owner=data.get("owner"), expires_at=data.get("expires_at")
        )
        obj.pk = token.pk
        request._issued_token = (token, plain)

    def response_add(self, request: HttpRequest, obj: ApiToken, post_url_continue=None) -> HttpResponse:
        token, plain = request._issued_token
        return shown_once(
            self,
            request,
            title="API token",
            items=[(f"{token.name} ({', '.join(token.scopes)})", plain)],
            note="Send it as “Authorization: Bearer <token>”. It is stored hashed and is never shown again.",
        )

    @admin.action(description="Revoke selected tokens", permissions=["administer"])
    def revoke(self, request: HttpRequest, queryset):
        def run(qs) -> None:
            chosen = list(qs)
            for token in chosen:
                tokens.revoke(token)
            report(self, request, len(chosen), "Revoked", [])

        return confirm_action(self, request, queryset, title="Revoke tokens", verb="Revoke", danger=True, run=run)


class RoleWritesForAdmins:
    """Every role reads; admins write. Only superusers hand out superuser or raw permissions."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request_has_role(request, VIEWER)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request_has_role(request, VIEWER)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request_has_role(request, ADMIN)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return request_has_role(request, ADMIN)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return request_has_role(request, ADMIN)


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class ConsoleUserAdmin(RoleWritesForAdmins, UserAdmin):
    list_display = ("username", "email", "role_groups", "is_active", "is_superuser", "last_login")
    list_filter = ("is_superuser", "is_active", "groups")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="groups")
    def role_groups(self, user: User) -> str:
        return ", ".join(g.name for g in user.groups.all())

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields += ("is_superuser", "user_permissions", "is_staff")
        return fields


@admin.register(Group)
class ConsoleGroupAdmin(RoleWritesForAdmins, GroupAdmin):
    pass
