"""Management commands: `tenant_create` for automation, `seed_demo` for `make run`."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from devices.choices import DeviceState
from devices.models import Device
from portal.choices import Role
from portal.management.commands.seed_demo import DEMO_TENANT
from portal.models import Membership, Tenant, User
from tests.factories import UserFactory


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def api_with(token) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return api


def test_tenant_create_prints_one_json_line_with_working_tokens(db):
    out = run(
        "tenant_create", "Northwind Traders", "--region", "emea", "--admin", "ada@northwind.example",
        "--admin-password", "a-long-password", "--technician", "tom@northwind.example",
        "--technician-password", "another-password",
    )
    assert out.endswith("\n") and out.count("\n") == 1
    result = json.loads(out)
    assert set(result) == {"tenant", "admin_token", "technician_token"}
    tenant = Tenant.objects.get(pk=result["tenant"])
    assert (tenant.name, tenant.region) == ("Northwind Traders", "emea")
    assert User.objects.get(username="ada@northwind.example").check_password("a-long-password")
    assert User.objects.get(username="tom@northwind.example").check_password("another-password")

    admin, technician = api_with(result["admin_token"]), api_with(result["technician_token"])
    created = admin.post("/api/v1/devices/", {"mac": "00-15-65-00-00-01", "location": "HQ"}, format="json")
    assert created.status_code == 201
    assert Device.objects.get().tenant == tenant
    assert [d["mac"] for d in technician.get("/api/v1/devices/").json()["results"]] == ["00-15-65-00-00-01"]
    assert technician.post("/api/v1/devices/", {"mac": "00-15-65-00-00-02", "location": "HQ"},
                           format="json").status_code == 403


def test_tenant_create_without_a_technician(db):
    result = json.loads(run("tenant_create", "Solo", "--region", "apac", "--admin", "solo@example.com"))
    assert result["technician_token"] is None
    membership = Membership.objects.get(tenant_id=result["tenant"])
    assert (membership.user.username, membership.role) == ("solo@example.com", Role.ADMIN)
    assert not membership.user.has_usable_password()
    assert api_with(result["admin_token"]).get("/api/v1/devices/").status_code == 200


def test_tenant_create_can_start_with_the_gateway_off(db):
    result = json.loads(run("tenant_create", "Later", "--admin", "later@example.com", "--gateway-disabled"))
    assert not Tenant.objects.get(pk=result["tenant"]).sip_gateway_enabled


@pytest.mark.parametrize(
    "args, message",
    [
        (["--region", "mars", "--admin", "new@example.com"], "invalid choice: 'mars'"),
        (["--admin", "taken@example.com"], "taken@example.com already has an account"),
        (["--admin", "new@example.com", "--technician", "taken@example.com"], "taken@example.com already has"),
        (["--admin", "same@example.com", "--technician", "same@example.com"], "different e-mail addresses"),
        (["--region", "emea"], "--admin"),
    ],
)
def test_tenant_create_fails_cleanly_and_creates_nothing(db, args, message):
    UserFactory(username="taken@example.com")
    with pytest.raises(CommandError, match=message):
        run("tenant_create", "Broken", *args)
    assert not Tenant.objects.filter(name="Broken").exists()
    assert User.objects.count() == 1


def test_seed_demo_creates_the_demo_tenant_once(db):
    first = run("seed_demo", "--devices", "40")
    assert "admin@contoso.example" in first and "tech@contoso.example" in first and "user@contoso.example" in first
    tenant = Tenant.objects.get(name=DEMO_TENANT)
    roles = dict(Membership.objects.filter(tenant=tenant).values_list("user__username", "role"))
    assert roles.pop("admin@contoso.example") == Role.ADMIN
    assert roles.pop("tech@contoso.example") == Role.TECHNICIAN
    assert roles.pop("user@contoso.example") == Role.USER
    assert set(roles.values()) == {Role.USER}  # colleagues, who cannot sign in
    assert not User.objects.filter(username__in=roles).exclude(password__startswith="!").exists()
    devices = Device.objects.filter(tenant=tenant)
    assert devices.count() == 40
    # Signed in means signed in by somebody (DESIGN.md, flow 5).
    signed_in = devices.filter(state=DeviceState.SIGNED_IN)
    assert signed_in.exists() and not signed_in.filter(signed_in_user=None).exists()
    assert not devices.exclude(state=DeviceState.SIGNED_IN).exclude(signed_in_user=None).exists()
    assert devices.values("state").distinct().count() == 3
    assert devices.exclude(model=None).values("model__vendor").distinct().count() >= 3
    assert User.objects.get(username="admin@contoso.example").check_password("demo-password-1")

    second = run("seed_demo", "--devices", "40")
    assert "exists already" in second
    assert Tenant.objects.filter(name=DEMO_TENANT).count() == 1
    assert Device.objects.count() == 40 and User.objects.count() == 3 + len(roles)
