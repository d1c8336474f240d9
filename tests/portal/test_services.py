"""Tenants, users, API tokens and the audit log."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from rest_framework.test import APIClient

from portal.choices import ActorType, Role
from portal.models import ApiToken, AuditEvent, Membership, Tenant, User, hash_token
from portal.selectors import audit_events, membership_for
from portal.services import (
    Actor,
    api_token_create,
    audit_record,
    audit_record_many,
    tenant_create,
    tenant_update_gateway,
)
from tests.factories import DeviceFactory, UserFactory


def test_tenant_create_makes_the_tenant_its_people_and_their_tokens(db):
    result = tenant_create(
        name="Northwind", region="emea", admin_email="ada@northwind.example", admin_password="s3cret-enough",
        technician_email="tom@northwind.example",
    )
    tenant = Tenant.objects.get(pk=result["tenant"])
    assert (tenant.name, tenant.region, tenant.sip_gateway_enabled) == ("Northwind", "emea", True)
    assert len(tenant.provisioning_key) >= 32
    roles = dict(Membership.objects.filter(tenant=tenant).values_list("user__username", "role"))
    assert roles == {"ada@northwind.example": Role.ADMIN, "tom@northwind.example": Role.TECHNICIAN}
    assert User.objects.get(username="ada@northwind.example").check_password("s3cret-enough")
    assert not User.objects.get(username="tom@northwind.example").has_usable_password()
    for key in (result["admin_token"], result["technician_token"]):
        token = ApiToken.objects.get(key_hash=hash_token(key))
        assert key not in (token.key_hash, token.prefix) and key.startswith(token.prefix)
    assert AuditEvent.objects.get(tenant=tenant).action == "tenant.create"


def test_tenant_create_without_a_technician_has_no_technician_token(db):
    result = tenant_create(name="Solo", admin_email="solo@example.com")
    assert result["technician_token"] is None
    assert Tenant.objects.get(pk=result["tenant"]).region == "noam"


def test_each_tenant_gets_its_own_provisioning_key(db):
    keys = {Tenant.objects.get(pk=tenant_create(name=f"T{n}", admin_email=f"a{n}@x.example")["tenant"]).provisioning_key
            for n in range(3)}
    assert len(keys) == 3


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"region": "mars"}, 'region "mars" is not one of noam, emea, apac'),
        ({"admin_email": "taken@example.com"}, "taken@example.com already has an account"),
        ({"technician_email": "taken@example.com"}, "taken@example.com already has an account"),
        ({"admin_email": "same@example.com", "technician_email": "same@example.com"},
         "the admin and the technician need different e-mail addresses"),
        ({"admin_email": "Taken@Example.com"}, "taken@example.com already has an account"),
        ({"admin_email": "same@example.com", "technician_email": "SAME@example.com"},
         "the admin and the technician need different e-mail addresses"),
    ],
)
def test_tenant_create_refuses_bad_input_and_creates_nothing(db, arguments, message):
    UserFactory(username="taken@example.com")
    with pytest.raises(ValueError, match=message):
        tenant_create(**{"name": "Broken", "admin_email": "new@example.com", **arguments})
    assert not Tenant.objects.filter(name="Broken").exists()
    assert not User.objects.filter(username__in=["new@example.com", "same@example.com"]).exists()


def test_switching_the_gateway_is_audited(tenant_a, admin_a):
    actor = Actor.of_user(admin_a.user)
    tenant_update_gateway(tenant=tenant_a, actor=actor, enabled=False)
    tenant_a.refresh_from_db()
    assert not tenant_a.sip_gateway_enabled
    tenant_update_gateway(tenant=tenant_a, actor=actor, enabled=True)
    assert list(audit_events(tenant=tenant_a).order_by("id").values_list("action", flat=True)) == [
        "tenant.gateway_disabled", "tenant.gateway_enabled",
    ]


def test_actors_say_who_did_it(admin_a):
    token, key = api_token_create(user=admin_a.user, name="script")
    assert Actor.of_user(admin_a.user).label == admin_a.user.username
    by_token = Actor.of_user(admin_a.user, token=token)
    assert (by_token.type, by_token.user) == (ActorType.TOKEN, admin_a.user)
    assert by_token.label == f"{admin_a.user.username} (token {key[:8]}…)"
    assert (Actor.phone("00-15-65-12-34-56").type, Actor.system().label) == (ActorType.PHONE, "system")


def test_audit_rows_point_at_their_object_and_stay_in_their_tenant(tenant_a, tenant_b):
    devices = DeviceFactory.create_batch(3, tenant=tenant_a)
    audit_record_many(tenant=tenant_a, actor=Actor.system("sweep"), action="device.offboard", objects=devices)
    audit_record(tenant=tenant_b, actor=Actor.system(), action="tenant.note", details={"why": "test"})
    events = audit_events(tenant=tenant_a, object_type="device", object_id=devices[1].pk)
    assert [(e.action, e.object_repr, e.actor_label) for e in events] == [
        ("device.offboard", str(devices[1]), "sweep"),
    ]
    assert audit_events(tenant=tenant_a).count() == 3
    assert audit_events(tenant=tenant_b).get().details == {"why": "test"}


def test_a_user_without_a_tenant_has_no_membership(db):
    assert membership_for(UserFactory()) is None


def test_token_use_is_recorded_at_most_once_a_minute(admin_a):
    token = ApiToken.objects.get(user=admin_a.user)
    assert token.last_used_at is None
    admin_a.api.get("/api/v1/devices/")
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first is not None
    admin_a.api.get("/api/v1/devices/")
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=2))
    admin_a.api.get("/api/v1/devices/")
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first - timedelta(seconds=1)


def test_a_deactivated_users_token_stops_working(admin_a):
    User.objects.filter(pk=admin_a.user.pk).update(is_active=False)
    assert admin_a.api.get("/api/v1/devices/").status_code == 401


def test_a_token_of_a_user_without_a_tenant_reads_nothing(db):
    _, key = api_token_create(user=UserFactory(), name="orphan")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/devices/").status_code == 403


def test_addresses_are_stored_lower_case_and_sign_in_in_any_case(db, client):
    tenant_create(name="Fabrikam", admin_email=" Ada@Fabrikam.Example ", admin_password="s3cret-enough")
    user = User.objects.get(username="ada@fabrikam.example")
    assert user.email == "ada@fabrikam.example"

    response = client.post("/login/", {"username": "ADA@fabrikam.example", "password": "s3cret-enough"})
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(user.pk)
    # The same rule for accounts made another way (createsuperuser uses this).
    assert User.objects.create_user("Carol@Fabrikam.Example").username == "carol@fabrikam.example"


def test_the_migration_lowers_old_addresses_but_never_onto_another_account(db):
    migration = importlib.import_module("portal.migrations.0003_user_email_lower_case")
    # Stored as they were before the rule (update() skips normalize_username).
    mixed, clash, plain = UserFactory.create_batch(3)
    User.objects.filter(pk=mixed.pk).update(username="Bob@Example.com", email="Bob@Example.com")
    User.objects.filter(pk=clash.pk).update(username="Eve@Example.com", email="Eve@Example.com")
    User.objects.filter(pk=plain.pk).update(username="eve@example.com", email="eve@example.com")

    migration.lower_case_addresses(django_apps, None)

    mixed.refresh_from_db()
    clash.refresh_from_db()
    assert (mixed.username, mixed.email) == ("bob@example.com", "bob@example.com")
    assert (clash.username, clash.email) == ("Eve@Example.com", "eve@example.com")
    assert User.objects.get_by_natural_key("Eve@Example.com") == clash  # still signs in, as typed
