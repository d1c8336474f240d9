"""Access helpers for HTML views: the tenant check happens here, so no view can forget it."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import resolve_url
from django.utils.http import url_has_allowed_host_and_scheme

from portal.api.permissions import request_membership
from portal.choices import Role
from portal.selectors import tenant_object_exists
from portal.services import Actor

ADMIN = (Role.ADMIN,)
STAFF = (Role.ADMIN, Role.TECHNICIAN)


def member_required(roles=None, *, model=None):
    """Log in first; then the user must belong to a tenant, in one of `roles` (any, if None).
    The view gets `request.tenant`, `request.membership` and `request.actor`. `model`: that of the
    object the URL's `pk` names; a role that may not act gets 404 rather than 403 when it is not
    an object of its tenant (another tenant's object is always a 404)."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapper(request, *args, **kwargs):
            membership = request_membership(request)
            if membership is None:
                raise PermissionDenied
            if roles is not None and membership.role not in roles:
                pk = kwargs.get("pk")
                if model and pk is not None and not tenant_object_exists(model, tenant=membership.tenant, pk=pk):
                    raise Http404
                raise PermissionDenied
            request.membership = membership
            request.tenant = membership.tenant
            request.actor = Actor.of_user(request.user)
            return view(request, *args, **kwargs)

        wrapper.member_roles, wrapper.member_model = roles, model  # for the URL conf's check in the tests
        return wrapper

    return decorator


def safe_next(request, default: str) -> str:
    """The `next` field of a form if it stays on this site, else `default` (no open redirects)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return resolve_url(default)
