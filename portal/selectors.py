from django.db.models import QuerySet

from portal.models import AuditEvent, Membership, Tenant


def membership_for(user) -> Membership | None:
    """The user's one membership, or None for anonymous users and users of no tenant."""
    if not getattr(user, "is_authenticated", False):
        return None
    cached = user._state.fields_cache.get("membership")  # loaded with the API token
    if cached is not None:
        return cached
    try:
        return Membership.objects.select_related("tenant").get(user=user)
    except Membership.DoesNotExist:
        return None


def tenant_object_exists(model, *, tenant: Tenant, pk) -> bool:
    """Whether `pk` names an object of `model` in `tenant`: a caller whose role may not act on it
    gets 403 for its own tenant's object, 404 for any other (HTML pages and the API alike)."""
    return model.objects.filter(pk=pk, tenant=tenant).exists()


def audit_events(*, tenant: Tenant, object_type: str | None = None, object_id: int | None = None) -> QuerySet:
    events = AuditEvent.objects.filter(tenant=tenant)
    if object_type is not None:
        events = events.filter(object_type=object_type, object_id=object_id)
    return events
