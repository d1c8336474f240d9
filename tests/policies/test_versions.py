"""Every change that alters a device's effective settings raises its wanted version, in one
UPDATE whatever the number of devices; changes that alter nothing raise nothing."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devices.models import Device
from policies.models import Policy
from policies.services import (
    device_wanted_version_raise,
    policy_assign,
    policy_create,
    policy_delete,
    policy_unassign,
    policy_update,
    user_phone_number_update,
)
from portal.services import Actor
from tests.policies.conftest import member, phone, versions

ADMIN = Actor.system("test")


@pytest.fixture
def fleet(tenant_a, defaults_a):
    """Phones on each path of resolution for calling policies, and the policies they resolve to."""
    alice, bob, carol = member(tenant_a), member(tenant_a), member(tenant_a)
    sales = policy_create(tenant=tenant_a, actor=ADMIN, kind="calling", name="Sales")
    lobby = policy_create(tenant=tenant_a, actor=ADMIN, kind="calling", name="Lobby")
    policy_assign(policy=sales, actor=ADMIN, users=[alice.username])
    devices = {
        "on_default": phone(tenant_a, user=carol),
        "not_signed_in": phone(tenant_a),
        "via_user": phone(tenant_a, user=alice),
        "own": phone(tenant_a, user=bob),
        "own_beats_user": phone(tenant_a, user=alice),
    }
    policy_assign(policy=lobby, actor=ADMIN, devices=[devices["own"].pk, devices["own_beats_user"].pk])
    Device.objects.filter(tenant=tenant_a).update(wanted_version=3, synced_version=3)
    return {
        "devices": devices,
        "sales": sales,
        "lobby": lobby,
        "default": defaults_a["calling"],
        "users": {"alice": alice, "bob": bob, "carol": carol},
    }


def raised(fleet) -> set[str]:
    names = list(fleet["devices"])
    return {name for name, version in zip(names, versions(*fleet["devices"].values()), strict=True) if version > 3}


def test_editing_a_policys_settings_raises_the_devices_it_is_effective_on(fleet):
    policy_update(policy=fleet["sales"], actor=ADMIN, data={"settings": {"voicemail": False}})
    assert raised(fleet) == {"via_user"}


def test_editing_the_default_raises_the_devices_with_no_assignment_of_its_kind(fleet):
    policy_update(policy=fleet["default"], actor=ADMIN, data={"settings": {"simultaneous_ring": False}})
    assert raised(fleet) == {"on_default", "not_signed_in"}


def test_editing_a_device_level_policy_raises_its_devices(fleet):
    policy_update(policy=fleet["lobby"], actor=ADMIN, data={"settings": {"voicemail": False}})
    assert raised(fleet) == {"own", "own_beats_user"}


def test_renaming_a_policy_or_saving_the_same_settings_raises_nothing(fleet):
    policy_update(policy=fleet["default"], actor=ADMIN, data={"name": "Everyone", "description": "All phones"})
    policy_update(policy=fleet["default"], actor=ADMIN, data={"settings": {"voicemail": True}})
    assert raised(fleet) == set()
    assert Policy.objects.get(pk=fleet["default"].pk).version == 1


def test_editing_a_default_of_another_kind_raises_every_device_with_no_policy_of_that_kind(fleet, defaults_a):
    policy_update(policy=defaults_a["ip_phone"], actor=ADMIN, data={"settings": {"language": "es"}})
    assert raised(fleet) == set(fleet["devices"])  # calling assignments do not shield them


def test_assigning_to_devices_raises_only_those_whose_policy_changes(fleet):
    devices = fleet["devices"]
    policy_assign(policy=fleet["lobby"], actor=ADMIN, devices=[devices["own"].pk, devices["on_default"].pk])
    assert raised(fleet) == {"on_default"}
    policy_assign(policy=fleet["lobby"], actor=ADMIN, devices=[devices["not_signed_in"].pk])
    assert raised(fleet) == {"on_default", "not_signed_in"}


def test_assigning_the_default_to_devices_on_the_default_raises_nothing(fleet):
    devices = fleet["devices"]
    result = policy_assign(
        policy=fleet["default"], actor=ADMIN, devices=[devices["on_default"].pk, devices["not_signed_in"].pk]
    )
    assert (result.assigned, result.raised) == (2, 0)
    assert raised(fleet) == set()


def test_assigning_to_a_user_raises_their_phones_without_a_policy_of_their_own(fleet):
    policy_assign(policy=fleet["lobby"], actor=ADMIN, users=[fleet["users"]["alice"].username])
    assert raised(fleet) == {"via_user"}


def test_a_new_tenant_default_raises_the_devices_that_fall_back_to_it(fleet):
    result = policy_assign(policy=fleet["lobby"], actor=ADMIN, tenant_default=True)
    assert raised(fleet) == {"on_default", "not_signed_in"}
    assert result.raised == 2
    assert set(Policy.objects.filter(kind="calling", is_default=True, tenant=fleet["lobby"].tenant)) == {fleet["lobby"]}


def test_making_the_default_the_default_again_raises_nothing(fleet):
    policy_assign(policy=fleet["default"], actor=ADMIN, tenant_default=True)
    assert raised(fleet) == set()


def test_taking_a_policy_back_from_a_device_raises_it_unless_it_falls_back_to_the_same(fleet, tenant_a):
    devices = fleet["devices"]
    policy_unassign(policy=fleet["lobby"], actor=ADMIN, devices=[devices["own"].pk, devices["own_beats_user"].pk])
    assert raised(fleet) == {"own", "own_beats_user"}

    Device.objects.filter(tenant=tenant_a).update(wanted_version=3)
    policy_assign(policy=fleet["default"], actor=ADMIN, devices=[devices["on_default"].pk])
    policy_unassign(policy=fleet["default"], actor=ADMIN, devices=[devices["on_default"].pk])
    assert raised(fleet) == set()


def test_taking_a_policy_back_from_a_user_raises_their_phones(fleet):
    policy_unassign(policy=fleet["sales"], actor=ADMIN, users=[fleet["users"]["alice"].username])
    assert raised(fleet) == {"via_user"}
    assert not fleet["sales"].assignments.exists()


def test_deleting_a_policy_raises_its_devices_which_fall_back(fleet):
    policy_delete(policy=fleet["sales"], actor=ADMIN)
    assert raised(fleet) == {"via_user"}


def test_the_default_cannot_be_deleted(fleet):
    with pytest.raises(ValidationError, match="Make another policy the default"):
        policy_delete(policy=fleet["default"], actor=ADMIN)


def test_signing_in_or_out_raises_the_device(fleet):
    device = fleet["devices"]["not_signed_in"]
    assert device_wanted_version_raise(device=device) == 4
    assert raised(fleet) == {"not_signed_in"}


def test_a_users_new_number_raises_and_updates_the_phones_they_are_signed_in_to(fleet, tenant_a):
    alice = fleet["users"]["alice"]
    user_phone_number_update(tenant=tenant_a, actor=ADMIN, user=alice, phone_number="+14255550123")
    assert raised(fleet) == {"via_user", "own_beats_user"}
    assert set(Device.objects.filter(signed_in_user=alice).values_list("phone_number", flat=True)) == {"+14255550123"}
    with pytest.raises(ValidationError):
        user_phone_number_update(tenant=tenant_a, actor=ADMIN, user=alice, phone_number="555-0123")


def test_a_device_in_sync_starts_pending_now_and_one_behind_keeps_its_first_moment(fleet):
    devices = fleet["devices"]
    earlier = timezone.now() - timedelta(hours=3)
    Device.objects.filter(pk=devices["not_signed_in"].pk).update(synced_version=2, sync_pending_since=earlier)
    before = timezone.now()
    policy_update(policy=fleet["default"], actor=ADMIN, data={"settings": {"voicemail": False}})
    since = dict(Device.objects.filter(pk__in=[d.pk for d in devices.values()]).values_list("pk", "sync_pending_since"))
    assert since[devices["not_signed_in"].pk] == earlier
    assert since[devices["on_default"].pk] >= before


def _queries(action) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        action()
    return [q["sql"] for q in captured.captured_queries]


@pytest.mark.parametrize("change", ["edit", "default", "assign_devices", "assign_users", "unassign_devices"])
def test_a_change_costs_the_same_queries_for_one_device_or_a_hundred(tenant_a, defaults_a, change):
    def run(count: int) -> list[str]:
        user = member(tenant_a)
        devices = [phone(tenant_a, user=user) for _ in range(count)]
        ids = [d.pk for d in devices]
        policy = policy_create(tenant=tenant_a, actor=ADMIN, kind="calling", name=f"P{count}")
        if change == "unassign_devices":
            policy_assign(policy=policy, actor=ADMIN, devices=ids)
        actions = {
            "edit": lambda: policy_update(
                policy=defaults_a["calling"], actor=ADMIN, data={"settings": {"voicemail": count > 1}}
            ),
            "default": lambda: policy_assign(policy=policy, actor=ADMIN, tenant_default=True),
            "assign_devices": lambda: policy_assign(policy=policy, actor=ADMIN, devices=ids),
            "assign_users": lambda: policy_assign(policy=policy, actor=ADMIN, users=[user.username]),
            "unassign_devices": lambda: policy_unassign(policy=policy, actor=ADMIN, devices=ids),
        }
        before = versions(*devices)
        queries = _queries(actions[change])
        assert all(after > was for after, was in zip(versions(*devices), before, strict=True)), "every device raised"
        return queries

    one, hundred = run(1), run(100)
    assert len(one) == len(hundred), "\n".join(hundred)
    updates = [q for q in hundred if q.startswith('UPDATE "devices_device"')]
    assert len(updates) == 1, updates
