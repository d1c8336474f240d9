from rest_framework import permissions

from portal.choices import Role
from portal.selectors import membership_for


def request_membership(request):
    """The caller's membership, read once per request (DRF and Django requests alike)."""
    target = getattr(request, "_request", request)
    if not hasattr(target, "_membership"):
        target._membership = membership_for(request.user)
    return target._membership


class IsTenantMember(permissions.BasePermission):
    """Admins and technicians read; only admins write. A view narrows this with `allowed_roles`."""

    def has_permission(self, request, view) -> bool:
        membership = request_membership(request)
        if membership is None:
            return False
        allowed = getattr(view, "allowed_roles", None)
        if allowed is None:
            allowed = (Role.ADMIN, Role.TECHNICIAN) if request.method in permissions.SAFE_METHODS else (Role.ADMIN,)
        return membership.role in allowed
