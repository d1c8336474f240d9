"""The served config carries the device's effective policy settings in its vendor's keys, and
fetching it is what brings the device in sync."""

import xml.etree.ElementTree as ET

import pytest

from devices.models import Device
from policies.choices import SyncState
from policies.selectors import device_policy_sync
from policies.services import policy_assign, policy_create, policy_update
from portal.services import Actor
from tests.factories import device_model
from tests.policies.conftest import member, phone

pytestmark = pytest.mark.usefixtures("own_cache_keys")

SYSTEM = Actor.system("test")


def fetch(client, device, file_name: str) -> str:
    response = client.get(f"/provision/{device.tenant.provisioning_key}/{file_name}", REMOTE_ADDR="192.0.2.10")
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def german_no_forwarding(tenant_a, defaults_a):
    ip_phone = policy_create(
        tenant=tenant_a,
        actor=SYSTEM,
        kind="ip_phone",
        name="Berlin",
        settings={"language": "de", "time_zone": "Europe/Berlin"},
    )
    calling = policy_create(
        tenant=tenant_a,
        actor=SYSTEM,
        kind="calling",
        name="Locked",
        settings={"call_forwarding": False, "voicemail": False},
    )
    return ip_phone, calling


def test_a_yealink_config_carries_language_time_zone_forwarding_and_voicemail(client, tenant_a, german_no_forwarding):
    device = phone(tenant_a, user=member(tenant_a), model=device_model("Yealink", "T54W"))
    for policy in german_no_forwarding:
        policy_assign(policy=policy, actor=SYSTEM, devices=[device.pk])
    body = fetch(client, device, f"{device.sip_user.lower()}.cfg")
    for line in (
        "lang.gui = German",
        "local_time.time_zone = +1",
        "local_time.summer_time = 2",
        "features.fwd.allow = 0",
        "voice_mail.number.1 = ",
    ):
        assert f"\n{line}\n" in body, line


def test_a_cisco_config_carries_them_as_its_own_elements(client, tenant_a, german_no_forwarding):
    user = member(tenant_a)
    for policy in german_no_forwarding:
        policy_assign(policy=policy, actor=SYSTEM, users=[user.username])
    device = phone(tenant_a, user=user, model=device_model("Cisco", "8841"))
    root = ET.fromstring(fetch(client, device, f"{device.sip_user.upper()}.xml"))
    values = {element.tag: element.text for element in root}
    assert values["Language_Selection"] == "German"
    assert values["Time_Zone"] == "GMT+01:00"
    assert values["Cfwd_Setting"] == "No"


def test_a_poly_config_carries_the_defaults_when_nothing_is_assigned(client, tenant_a, defaults_a):
    device = phone(tenant_a, model=device_model("Poly", "VVX 450"))
    root = ET.fromstring(fetch(client, device, f"{device.sip_user.lower()}-sipgateway.cfg"))
    policy = root.find("policy")
    assert policy.get("lcl.ml.lang") == "English_United_States"
    assert policy.get("tcpIpApp.sntp.gmtOffset") == "0"
    assert policy.get("divert.fwd.1.enabled") == "1"


def test_fetching_the_config_after_a_change_brings_the_device_in_sync(client, tenant_a, defaults_a):
    device = phone(tenant_a, user=member(tenant_a), model=device_model("Yealink", "T54W"))
    policy_update(policy=defaults_a["ip_phone"], actor=SYSTEM, data={"settings": {"language": "ja"}})
    device.refresh_from_db()
    assert device_policy_sync(device=device).state == SyncState.PENDING

    body = fetch(client, device, f"{device.sip_user.lower()}.cfg")

    assert "lang.gui = Japanese" in body
    assert f"config version {device.wanted_version}" in body
    device = Device.objects.get(pk=device.pk)
    assert device.synced_version == device.wanted_version
    assert device_policy_sync(device=device).state == SyncState.IN_SYNC
