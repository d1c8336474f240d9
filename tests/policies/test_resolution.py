import pytest
from django.core.exceptions import ValidationError

from policies.choices import Source
from policies.selectors import device_effective_policies, device_effective_settings
from policies.services import policy_assign, policy_create, policy_defaults_ensure, policy_update
from portal.services import Actor
from tests.policies.conftest import member, phone

ADMIN = Actor.system("test")


def sources(device) -> dict:
    return {kind: (e.policy.name, e.source) for kind, e in device_effective_policies(device=device).items()}


def test_a_device_with_nothing_assigned_gets_each_tenant_default(tenant_a, defaults_a):
    device = phone(tenant_a, user=member(tenant_a))
    assert sources(device) == {
        "calling": ("Global (Org-wide default)", Source.TENANT_DEFAULT),
        "ip_phone": ("Global (Org-wide default)", Source.TENANT_DEFAULT),
        "emergency_calling": ("Global (Org-wide default)", Source.TENANT_DEFAULT),
    }


def test_the_device_beats_the_user_and_the_user_beats_the_default_kind_by_kind(tenant_a, defaults_a):
    user = member(tenant_a)
    device = phone(tenant_a, user=user)
    user_calling = policy_create(
        tenant=tenant_a, actor=ADMIN, kind="calling", name="No forwarding", settings={"call_forwarding": False}
    )
    user_phone = policy_create(
        tenant=tenant_a, actor=ADMIN, kind="ip_phone", name="German", settings={"language": "de"}
    )
    device_phone = policy_create(
        tenant=tenant_a,
        actor=ADMIN,
        kind="ip_phone",
        name="Lobby",
        settings={"sign_in_mode": "common_area", "language": "fr"},
    )
    policy_assign(policy=user_calling, actor=ADMIN, users=[user.username])
    policy_assign(policy=user_phone, actor=ADMIN, users=[user.pk])
    policy_assign(policy=device_phone, actor=ADMIN, devices=[device.pk])

    assert sources(device) == {
        "calling": ("No forwarding", Source.USER),
        "ip_phone": ("Lobby", Source.DEVICE),
        "emergency_calling": ("Global (Org-wide default)", Source.TENANT_DEFAULT),
    }
    settings = device_effective_settings(device=device)
    assert settings["call_forwarding"] is False
    assert settings["language"] == "fr"
    assert settings["sign_in_mode"] == "common_area"
    assert settings["emergency_location"] == ""


def test_a_signed_out_device_loses_its_users_policies(tenant_a, defaults_a):
    user = member(tenant_a)
    german = policy_create(tenant=tenant_a, actor=ADMIN, kind="ip_phone", name="German", settings={"language": "de"})
    policy_assign(policy=german, actor=ADMIN, users=[user.username])
    device = phone(tenant_a, user=user)
    assert device_effective_settings(device=device)["language"] == "de"
    device.signed_in_user = None
    device.save()
    assert device_effective_settings(device=device)["language"] == "en"


def test_the_effective_settings_follow_an_edit_of_the_default(tenant_a, defaults_a):
    device = phone(tenant_a)
    policy_update(policy=defaults_a["ip_phone"], actor=ADMIN, data={"settings": {"time_zone": "Europe/Paris"}})
    assert device_effective_settings(device=device)["time_zone"] == "Europe/Paris"


def test_the_flat_settings_carry_every_setting_of_every_kind(tenant_a, defaults_a):
    assert set(device_effective_settings(device=phone(tenant_a))) == {
        "call_forwarding",
        "forward_to",
        "simultaneous_ring",
        "voicemail",
        "sign_in_mode",
        "hot_desking_timeout",
        "language",
        "time_zone",
        "emergency_location",
        "notification_number",
    }


def test_a_tenant_without_defaults_yet_resolves_to_the_built_in_settings(tenant_a):
    effective = device_effective_policies(device=phone(tenant_a))
    assert effective["ip_phone"].policy is None
    assert effective["ip_phone"].settings["language"] == "en"


def test_defaults_are_created_once(tenant_a):
    first = policy_defaults_ensure(tenant=tenant_a)
    again = policy_defaults_ensure(tenant=tenant_a)
    assert {k: p.pk for k, p in first.items()} == {k: p.pk for k, p in again.items()}
    assert len(first) == 3


def test_another_tenants_devices_and_users_cannot_be_assigned(tenant_a, tenant_b):
    policy = policy_create(tenant=tenant_a, actor=ADMIN, kind="calling", name="Sales")
    theirs = phone(tenant_b)
    stranger = member(tenant_b)
    with pytest.raises(ValidationError) as caught:
        policy_assign(policy=policy, actor=ADMIN, devices=[theirs.pk])
    assert caught.value.message_dict == {"devices": [f"No such device: {theirs.pk}."]}
    with pytest.raises(ValidationError) as caught:
        policy_assign(policy=policy, actor=ADMIN, users=[stranger.username])
    assert caught.value.message_dict == {"users": [f"No such user in your organization: {stranger.username}."]}
    assert not policy.assignments.exists()


def test_assigning_replaces_the_devices_previous_policy_of_the_kind(tenant_a, defaults_a):
    device = phone(tenant_a)
    first = policy_create(tenant=tenant_a, actor=ADMIN, kind="calling", name="First")
    second = policy_create(tenant=tenant_a, actor=ADMIN, kind="calling", name="Second")
    policy_assign(policy=first, actor=ADMIN, devices=[device.pk])
    policy_assign(policy=second, actor=ADMIN, devices=[device.pk])
    assert sources(device)["calling"] == ("Second", Source.DEVICE)
    assert not first.assignments.exists()
