import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice

from django.db import models, transaction

from portal.choices import ActorType, Region, Role
from portal.models import ApiToken, AuditEvent, Membership, Tenant, User, hash_token


@dataclass(frozen=True)
class Actor:
    """Who did it, for the audit log: a user (in a browser or with a token), a phone, or the system."""

    type: str
    label: str
    user: User | None = None

    @classmethod
    def of_user(cls, user: User, token: ApiToken | None = None) -> "Actor":
        if token is not None:
            return cls(ActorType.TOKEN, f"{user.username} (token {token.prefix}…)", user)
        return cls(ActorType.USER, user.username, user)

    @classmethod
    def phone(cls, mac: str) -> "Actor":
        return cls(ActorType.PHONE, f"phone {mac}")

    @classmethod
    def system(cls, what: str = "system") -> "Actor":
        return cls(ActorType.SYSTEM, what)


def _event(*, tenant: Tenant, actor: Actor, action: str, obj: models.Model | None, details: dict | None) -> AuditEvent:
    return AuditEvent(
        tenant=tenant,
        actor_type=actor.type,
        actor_user=actor.user,
        actor_label=actor.label[:200],
        action=action,
        object_type=obj._meta.model_name if obj is not None else "",
        object_id=obj.pk if obj is not None else None,
        object_repr=str(obj)[:200] if obj is not None else "",
        details=details or {},
    )


def audit_record(
    *, tenant: Tenant, actor: Actor, action: str, obj: models.Model | None = None, details: dict | None = None
) -> AuditEvent:
    event = _event(tenant=tenant, actor=actor, action=action, obj=obj, details=details)
    event.save()
    return event


def audit_record_many(
    *, tenant: Tenant, actor: Actor, action: str, objects: Iterable[models.Model], details: dict | None = None
) -> None:
    """One audit row per object, an INSERT per 2,000: `objects` may be an iterator over a big
    queryset, never held whole in memory."""
    objects = iter(objects)
    while batch := list(islice(objects, 2000)):
        AuditEvent.objects.bulk_create(
            [_event(tenant=tenant, actor=actor, action=action, obj=obj, details=details) for obj in batch]
        )


def user_create(*, tenant: Tenant, email: str, role: str, password: str | None = None, **fields) -> User:
    email = User.normalize_username(email)
    user = User(username=email, email=email, **fields)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    Membership.objects.create(user=user, tenant=tenant, role=role)
    return user


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Return the token and its key; the key is not stored and cannot be shown again."""
    key = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, key_hash=hash_token(key), prefix=key[:8])
    return token, key


@transaction.atomic
def tenant_create(
    *,
    name: str,
    region: str = Region.NOAM,
    admin_email: str,
    admin_password: str | None = None,
    technician_email: str | None = None,
    technician_password: str | None = None,
    sip_gateway_enabled: bool = True,
) -> dict:
    """Create a tenant with its admin (and technician), each with an API token for automation."""
    if region not in Region.values:
        raise ValueError(f'region "{region}" is not one of {", ".join(Region.values)}')
    admin_email = User.normalize_username(admin_email)
    technician_email = User.normalize_username(technician_email) if technician_email else None
    if technician_email and technician_email == admin_email:
        raise ValueError("the admin and the technician need different e-mail addresses")
    emails = [e for e in (admin_email, technician_email) if e]
    taken = User.objects.filter(username__in=emails).values_list("username", flat=True)
    if taken:
        raise ValueError(f"{', '.join(sorted(taken))} already has an account")
    tenant = Tenant.objects.create(name=name, region=region, sip_gateway_enabled=sip_gateway_enabled)
    admin = user_create(tenant=tenant, email=admin_email, role=Role.ADMIN, password=admin_password)
    _, admin_key = api_token_create(user=admin, name="created with the tenant")
    result = {"tenant": tenant.pk, "admin_token": admin_key, "technician_token": None}
    if technician_email:
        technician = user_create(
            tenant=tenant, email=technician_email, role=Role.TECHNICIAN, password=technician_password
        )
        _, result["technician_token"] = api_token_create(user=technician, name="created with the tenant")
    audit_record(tenant=tenant, actor=Actor.system("tenant_create"), action="tenant.create", obj=tenant)
    # Imported here: policies builds on portal, not the other way round.
    from policies.services import policy_defaults_ensure

    policy_defaults_ensure(tenant=tenant)
    return result


def tenant_update_gateway(*, tenant: Tenant, actor: Actor, enabled: bool) -> Tenant:
    tenant.sip_gateway_enabled = enabled
    tenant.save(update_fields=["sip_gateway_enabled"])
    action = "tenant.gateway_enabled" if enabled else "tenant.gateway_disabled"
    audit_record(tenant=tenant, actor=actor, action=action, obj=tenant)
    return tenant
