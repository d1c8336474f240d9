"""The one filterset behind the HTML inventory and the API."""

from datetime import timedelta

import pytest
from django.utils import timezone

from devices.choices import DeviceState
from devices.filtersets import DeviceFilterSet
from devices.models import Device
from tests.conftest import login
from tests.factories import DeviceFactory, UserFactory, device_model, registered


@pytest.fixture
def phones(tenant_a):
    megan = UserFactory(username="megan.bowen@contoso.example")
    phones = {
        "reception": DeviceFactory(tenant=tenant_a, mac="00-15-65-12-34-56", display_name="Reception",
                                   location="HQ / Lobby", model=device_model("Yealink", "T54W")),
        "cafe": DeviceFactory(tenant=tenant_a, mac="00-04-F2-CA-FE-01", display_name="Café",
                              location="HQ / Floor 2", model=device_model("Poly", "VVX 450"),
                              state=DeviceState.SIGNED_IN, signed_in_user=megan, phone_number="+1 425 555 0100"),
        "lab": DeviceFactory(tenant=tenant_a, mac="64-16-7F-00-34-56", display_name="Lab bench",
                             location="Lab 3", model=device_model("Cisco", "8851"),
                             state=DeviceState.WAITING_FOR_SIGN_IN),
        "spare": DeviceFactory(tenant=tenant_a, mac="00-15-65-00-00-99", display_name="", location="Store room"),
    }
    registered(phones["cafe"], contact="sip:0004f2cafe01@192.0.2.5")
    registered(phones["lab"], contact="sip:64167f003456@192.0.2.6", minutes=-5)  # registration ran out
    return phones


def matching(data) -> set[str]:
    filterset = DeviceFilterSet(data, queryset=Device.objects.all())
    assert filterset.is_valid(), filterset.errors
    return {d.location for d in filterset.qs}


ALL = {"HQ / Lobby", "HQ / Floor 2", "Lab 3", "Store room"}


@pytest.mark.parametrize(
    "data, expected",
    [
        ({}, ALL),
        ({"state": ""}, ALL),
        ({"q": ""}, ALL),
        ({"q": "   "}, ALL),
        ({"state": "waiting_on_activation"}, {"HQ / Lobby", "Store room"}),
        ({"state": "signed_in"}, {"HQ / Floor 2"}),
        # A MAC fragment in any spelling, wherever it sits in the address.
        ({"q": "34:56"}, {"HQ / Lobby", "Lab 3"}),
        ({"q": "34-56"}, {"HQ / Lobby", "Lab 3"}),
        ({"q": "3456"}, {"HQ / Lobby", "Lab 3"}),
        ({"q": "12.3456"}, {"HQ / Lobby"}),
        ({"q": "00-15-65-12-34-56"}, {"HQ / Lobby"}),
        ({"q": "001565123456"}, {"HQ / Lobby"}),
        ({"q": "cafe"}, {"HQ / Floor 2"}),
        ({"q": "CA:FE"}, {"HQ / Floor 2"}),
        ({"q": "64-16-7f"}, {"Lab 3"}),
        # Names, locations, numbers and users.
        ({"q": "recep"}, {"HQ / Lobby"}),
        ({"q": "café"}, {"HQ / Floor 2"}),
        ({"q": "hq /"}, {"HQ / Lobby", "HQ / Floor 2"}),
        ({"q": "555 0100"}, {"HQ / Floor 2"}),
        ({"q": "megan"}, {"HQ / Floor 2"}),
        ({"q": "no such thing"}, set()),
        # Text matches the MAC's digits too, so a single digit finds it there as well as in names.
        ({"q": "3"}, {"Lab 3", "HQ / Lobby"}),
        ({"q": "lab"}, {"Lab 3"}),
        ({"model": "T54W"}, {"HQ / Lobby"}),
        ({"model": "vvx 450"}, {"HQ / Floor 2"}),
        ({"model": "Poly VVX 450"}, {"HQ / Floor 2"}),
        ({"model": "Cisco 8851"}, {"Lab 3"}),
        ({"model": "Yealink 8851"}, set()),
        ({"vendor": "cisco"}, {"Lab 3"}),
        ({"location": "hq"}, {"HQ / Lobby", "HQ / Floor 2"}),
        ({"location": "room"}, {"Store room"}),
        ({"online": "true"}, {"HQ / Floor 2"}),
        ({"online": "false"}, {"HQ / Lobby", "Lab 3", "Store room"}),
        ({"state": "waiting_on_activation", "q": "00-15-65", "location": "store"}, {"Store room"}),
    ],
)
def test_each_filter_narrows_the_inventory(phones, data, expected):
    assert matching(data) == expected


def test_the_model_filter_takes_a_catalog_id(phones):
    assert matching({"model": str(device_model("Cisco", "8851").pk)}) == {"Lab 3"}


def test_vendors_go_by_the_names_people_use_too(phones):
    assert matching({"vendor": "Cisco MPP"}) == matching({"vendor": "cisco"}) != set()
    assert matching({"model": "Cisco MPP 8851"}) == matching({"model": "8851"}) == {"Lab 3"}
    assert matching({"vendor": "Polycom"}) == matching({"vendor": "Poly"}) == {"HQ / Floor 2"}


def test_the_model_filter_is_one_query_with_the_list(phones, django_assert_num_queries):
    with django_assert_num_queries(1):  # no catalog read first: it runs on every filtered inventory page
        assert matching({"model": " Cisco  MPP 8851 "}) == {"Lab 3"}


def test_online_takes_a_boolean_as_clients_send_it(phones):
    online = matching({"online": "true"})
    assert online and online != matching({"online": "false"})
    for spelling in ("True", "TRUE", "1"):
        assert matching({"online": spelling}) == online
    for spelling in ("False", "0"):
        assert matching({"online": spelling}) == matching({"online": "false"})


@pytest.mark.parametrize(
    "data, field",
    [({"state": "asleep"}, "state"), ({"online": "maybe"}, "online"), ({"online": "yes"}, "online")],
)
def test_a_bad_value_is_a_field_error(db, data, field):
    filterset = DeviceFilterSet(data, queryset=Device.objects.all())
    assert not filterset.is_valid()
    assert list(filterset.errors) == [field]


def test_the_browser_list_and_the_api_agree(client, admin_a, phones):
    """The same query string gives the same devices in the HTML inventory and in the API."""
    login(client, admin_a)
    queries = [{"q": "34:56"}, {"online": "false", "location": "hq"}, {"model": "Poly VVX 450"}, {"state": "signed_in"}]
    for query in queries:
        page = client.get("/devices/", query).content.decode()
        html = {mac for mac in (d.mac for d in phones.values()) if f'data-mac="{mac}"' in page}
        api = {d["mac"] for d in admin_a.api.get("/api/v1/devices/", query).json()["results"]}
        assert html == api, query


def test_an_online_device_turns_offline_when_its_registration_runs_out(phones):
    phones["cafe"].registration_expires_at = timezone.now() - timedelta(seconds=1)
    phones["cafe"].save()
    assert matching({"online": "true"}) == set()
