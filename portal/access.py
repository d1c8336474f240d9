"""Access helpers for HTML views: the tenant check happens here, so no view can forget it."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import resolve_url
from django.utils.http import url_has_allowed_host_and_scheme

from portal.api.permissions import request_membership
from portal.choices import Role
from portal.services import Actor

ADMIN = (Role.ADMIN,)
STAFF = (Role.ADMIN, Role.TECHNICIAN)


def member_required(roles=None):
    """Log in first; then the user must belong to a tenant, in one of `roles` (any, if None).
    The view gets `request.tenant`, `request.membership` and `request.actor`."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapper(request, *args, **kwargs):
            membership = request_membership(request)
            if membership is None or (roles is not None and membership.role not in roles):
                raise PermissionDenied
            request.membership = membership
            request.tenant = membership.tenant
            request.actor = Actor.of_user(request.user)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def safe_next(request, default: str) -> str:
    """The `next` field of a form if it stays on this site, else `default` (no open redirects)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return resolve_url(default)
