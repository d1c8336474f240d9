"""The search box finds a phone by its signed-in user's address, however short the fragment: the
user part of the search is built two ways (an indexable array for three characters or more, a
join below that), and both must find the same phones, and only the tenant's own."""

import pytest

from devices.choices import DeviceState
from devices.selectors import device_list
from tests.factories import DeviceFactory, UserFactory


@pytest.fixture
def phones(tenant_a, tenant_b):
    megan = UserFactory(username="megan.bowen@contoso.example")
    adele = UserFactory(username="adele.vance@fabrikam.example")
    return {
        "megan": DeviceFactory(tenant=tenant_a, display_name="Desk", location="HQ",
                               state=DeviceState.SIGNED_IN, signed_in_user=megan),
        "unsigned": DeviceFactory(tenant=tenant_a, display_name="Spare", location="HQ"),
        "adele": DeviceFactory(tenant=tenant_b, display_name="Desk", location="HQ",
                               state=DeviceState.SIGNED_IN, signed_in_user=adele),
    }


def found(tenant, q: str) -> set[str]:
    return {device.signed_in_user.username for device in device_list(tenant=tenant, filters={"q": q})}


@pytest.mark.parametrize("q", ["n.", "N.B", "bowen@", "MEGAN.BOWEN@CONTOSO.EXAMPLE"])
def test_it_finds_a_phone_by_any_part_of_its_users_address_in_any_case(phones, tenant_a, q):
    assert found(tenant_a, q) == {"megan.bowen@contoso.example"}


@pytest.mark.parametrize("q", ["e.", "vance", "fabrikam.example"])
def test_it_never_finds_another_tenants_phone_through_its_user(phones, tenant_a, q):
    assert found(tenant_a, q) == set()


def test_a_user_who_matches_but_has_no_phone_brings_no_phone(phones, tenant_a):
    UserFactory(username="megan.unplugged@contoso.example")
    assert found(tenant_a, "megan.") == {"megan.bowen@contoso.example"}
