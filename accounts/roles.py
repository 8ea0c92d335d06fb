"""Three roles — viewer, operator, admin — held as membership of Django groups of those names.

OIDC sign-in syncs the groups from the identity provider's claims (accounts.adapters);
local superusers are admins. Everything that decides "may this person do X" asks here.
"""

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.db import transaction

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)
RANK = {None: 0, VIEWER: 1, OPERATOR: 2, ADMIN: 3}


def role_of(user: AbstractBaseUser | AnonymousUser | None) -> str | None:
    """The strongest role the user holds, or None (no access)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return ADMIN
    names = set(user.groups.values_list("name", flat=True))
    for role in (ADMIN, OPERATOR, VIEWER):
        if role in names:
            return role
    return None


def has_role(user, needed: str) -> bool:
    """True when the user's role is ``needed`` or stronger."""
    return RANK[role_of(user)] >= RANK[needed]


def can_view(user) -> bool:
    return has_role(user, VIEWER)


def can_operate(user) -> bool:
    """Retry, cancel, reprioritize, drain."""
    return has_role(user, OPERATOR)


def can_administer(user) -> bool:
    """Workers, tokens, users, settings."""
    return has_role(user, ADMIN)


# --- API token scopes a role may hand out ---------------------------------------------
SCOPES_BY_ROLE = {
    VIEWER: ("read",),
    OPERATOR: ("read", "submit", "operate"),
    ADMIN: ("read", "submit", "operate", "admin"),
}


def allowed_scopes(user) -> tuple[str, ...]:
    """The API token scopes this user may create (and a token they own may use)."""
    return SCOPES_BY_ROLE.get(role_of(user), ())


# --- Groups at the identity provider → role ---------------------------------------------
def role_for_groups(groups: Iterable[str]) -> str:
    """Admin groups → admin, operator groups → operator, anyone else who may sign in → viewer."""
    names = set(groups)
    if names & set(settings.OIDC_ADMIN_GROUPS):
        return ADMIN
    if names & set(settings.OIDC_OPERATOR_GROUPS):
        return OPERATOR
    return VIEWER


def groups_allowed(groups: Iterable[str]) -> bool:
    """May someone with these provider groups sign in at all?

    With BLOBFORGE_OIDC_ALLOWED_GROUPS empty, anyone the provider authenticates may. The
    operator and admin groups count as allowed too, so listing a team there is enough.
    """
    allowed = set(settings.OIDC_ALLOWED_GROUPS)
    if not allowed:
        return True
    return bool(set(groups) & (allowed | set(settings.OIDC_OPERATOR_GROUPS) | set(settings.OIDC_ADMIN_GROUPS)))


@transaction.atomic
def assign_role(user: AbstractBaseUser, role: str | None) -> None:
    """Make ``role`` the user's only role group (None: no role) and set is_staff to match.

    Every role may enter the admin site (the operator console); what they may do there
    is decided by the role. Superusers keep their staff flag and stay admins regardless.
    """
    role_groups = {name: Group.objects.get_or_create(name=name)[0] for name in ROLES}
    user.groups.remove(*[group for name, group in role_groups.items() if name != role])
    if role is not None:
        user.groups.add(role_groups[role])
    staff = role is not None or user.is_superuser
    if user.is_staff != staff:
        user.is_staff = staff
        user.save(update_fields=["is_staff"])
