"""The services behind the SIP edge, without SIP: batched bindings, what a User-Agent may change,
unregistering, and the feature codes' refusals."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devices.choices import CommandKind, DeviceState
from devices.models import Device, DeviceCommand
from enrollment.services import verification_code_issue
from gateway.phone_services import (
    Binding,
    PhoneRefused,
    phone_enroll,
    phone_sign_in_start,
    phone_sign_out,
    registration_current,
    registration_remove,
    registrations_store,
)
from portal.services import Actor
from tests.factories import DeviceFactory, TenantFactory, device_model, registered

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache_keys")]


def binding(device_or_user, *, contact_port=5060, agent="", expires=600) -> Binding:
    user = device_or_user if isinstance(device_or_user, str) else device_or_user.sip_user
    return Binding(user, f"sip:{user}@10.0.0.9:{contact_port}", "udp", f"203.0.113.9:{contact_port}", agent, expires)


def test_a_batch_stores_every_known_phone_and_answers_none_for_the_others(tenant_a):
    known, other = DeviceFactory(tenant=tenant_a), DeviceFactory(tenant=tenant_a)
    disabled = DeviceFactory(tenant=TenantFactory(sip_gateway_enabled=False))
    results = registrations_store(
        bindings=[
            binding(known),
            binding("0015650fffff"),
            binding(disabled),
            binding("not-a-mac"),
            binding(other, expires=3600),
            binding(known, contact_port=5070),  # the same phone again, later: it wins
        ]
    )
    assert [r is not None for r in results] == [True, False, False, False, True, True]
    known.refresh_from_db()
    other.refresh_from_db()
    disabled.refresh_from_db()
    assert known.contact_uri.endswith(":5070") and known.source_address == "203.0.113.9:5070"
    assert other.registration_expires_at > timezone.now() + timedelta(seconds=3590)
    assert disabled.contact_uri == ""


def test_a_user_agent_refines_the_model_within_its_vendor_and_never_moves_it_to_another(tenant_a):
    unknown_model = DeviceFactory(tenant=tenant_a)
    yealink = DeviceFactory(tenant=tenant_a, model=device_model("Yealink", "T54W"))
    registrations_store(
        bindings=[
            binding(unknown_model, agent="Yealink SIP-T33G 124.86.0.75"),
            binding(yealink, agent="PolycomVVX-VVX_450-UA/6.4.3.1234"),
        ]
    )
    unknown_model.refresh_from_db()
    yealink.refresh_from_db()
    assert (str(unknown_model.model), unknown_model.firmware) == ("Yealink T33G", "124.86.0.75")
    assert (str(yealink.model), yealink.firmware) == ("Yealink T54W", "")
    assert yealink.user_agent.startswith("Polycom")  # kept as it came, for whoever looks


def test_unregistering_another_contact_leaves_the_binding_and_star_removes_it(tenant_a):
    device = registered(DeviceFactory(tenant=tenant_a), contact="sip:x@10.0.0.9:5060")
    assert registration_remove(sip_user=device.sip_user, contact_uri="sip:x@10.0.0.9:5999").expires_in > 0
    assert registration_current(sip_user=device.sip_user).contact_uri == "sip:x@10.0.0.9:5060"
    assert registration_remove(sip_user=device.sip_user, contact_uri=None).expires_in == 0
    device.refresh_from_db()
    assert not device.online


def test_a_phone_of_a_tenant_with_the_gateway_off_cannot_enroll_even_with_its_code():
    device = DeviceFactory(tenant=TenantFactory(sip_gateway_enabled=False))
    code = verification_code_issue(device=device, actor=Actor.system("test")).code
    result = phone_enroll(sip_user=device.sip_user, code=code, source="203.0.113.9")
    assert (result.ok, result.reason) == (False, "Device is not onboarded")
    device.refresh_from_db()
    assert device.state == DeviceState.WAITING_ON_ACTIVATION


def test_sign_in_and_sign_out_need_an_enrolled_phone_registered_from_that_address(tenant_a):
    waiting = registered(DeviceFactory(tenant=tenant_a), contact="sip:x@10.0.0.9")
    Device.objects.filter(pk=waiting.pk).update(source_address="203.0.113.9:5060")
    with pytest.raises(PhoneRefused, match="not enrolled"):
        phone_sign_in_start(sip_user=waiting.sip_user, source_ip="203.0.113.9")
    enrolled = DeviceFactory(tenant=tenant_a, state=DeviceState.WAITING_FOR_SIGN_IN)
    with pytest.raises(PhoneRefused, match="Register"):
        phone_sign_out(sip_user=enrolled.sip_user, source_ip="203.0.113.9")


def test_the_sign_out_key_on_a_phone_nobody_is_signed_in_to_still_check_syncs_it(tenant_a):
    device = registered(DeviceFactory(tenant=tenant_a, state=DeviceState.WAITING_FOR_SIGN_IN), contact="sip:x@10.0.0.9")
    Device.objects.filter(pk=device.pk).update(source_address="203.0.113.9:5060")
    phone_sign_out(sip_user=device.sip_user, source_ip="203.0.113.9")
    assert DeviceCommand.objects.get(device=device).kind == CommandKind.RESYNC


def test_a_binding_is_stored_whole_or_not_at_all(tenant_a, monkeypatch):
    """No reader may see a phone online whose User-Agent facts are not stored yet (or never will be)."""
    device = DeviceFactory(tenant=tenant_a, model=device_model("Yealink", "T54W"))

    def fail(*args, **kwargs):
        raise RuntimeError("the database went away mid-batch")

    monkeypatch.setattr("gateway.phone_services._agents_write", fail)
    with pytest.raises(RuntimeError):
        registrations_store(bindings=[binding(device, agent="Yealink SIP-T54W 96.86.0.70")])
    device.refresh_from_db()
    assert (device.contact_uri, device.user_agent, device.online) == ("", "", False)


def first_registrations(tenants, count: int) -> list[Binding]:
    """Phones of a new onboarding registering for the first time: a User-Agent never seen, and a
    config version behind the one wanted (their policies were set before they came up)."""
    model = device_model("Yealink", "T54W")
    devices = [
        DeviceFactory(tenant=tenants[n % len(tenants)], model=model, wanted_version=2, synced_version=1)
        for n in range(count)
    ]
    return [binding(device, agent="Yealink SIP-T54W 96.86.0.70") for device in devices]


def test_a_batch_of_first_registrations_costs_the_same_queries_for_3_phones_as_for_30(tenant_a, tenant_b):
    counts = []
    for size in (3, 30):
        bindings = first_registrations([tenant_a, tenant_b], size)
        with CaptureQueriesContext(connection) as queries:
            registrations_store(bindings=bindings)
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_first_registrations_store_the_facts_and_sync_every_phone_behind_in_its_own_tenant(tenant_a, tenant_b):
    bindings = first_registrations([tenant_a, tenant_b], 6)
    registrations_store(bindings=bindings)

    devices = Device.objects.filter(tenant__in=[tenant_a, tenant_b])
    assert {(d.user_agent, d.firmware, str(d.model)) for d in devices} == {
        ("Yealink SIP-T54W 96.86.0.70", "96.86.0.70", "Yealink T54W")
    }
    syncs = DeviceCommand.objects.filter(kind=CommandKind.POLICY_SYNC)
    assert sorted((c.device_id, c.tenant_id, c.status) for c in syncs) == sorted(
        (d.pk, d.tenant_id, "queued") for d in devices
    )
    registrations_store(bindings=bindings)  # the refresh right after: one sync in flight is enough
    assert syncs.count() == 6


@pytest.mark.parametrize(
    ("asked", "removed"),
    [
        ("sip:x@10.0.0.9:5060;transport=udp", True),  # parameter values in any case (RFC 3261 §19.1.4)
        ("sip:x@10.0.0.9:5060;Transport=UDP;line=abc", True),  # a parameter only one side has is ignored
        ("sip:x@10.0.0.9:5060", False),  # but transport must be on both sides or neither
        ("sip:X@10.0.0.9:5060;transport=UDP", False),  # the user part exactly
        ("sip:x@10.0.0.9;transport=UDP", False),  # no port is not port 5060
        ("not a uri", False),
    ],
)
def test_unregistering_names_the_binding_as_rfc_3261_compares_uris(tenant_a, asked, removed):
    device = registered(DeviceFactory(tenant=tenant_a), contact="sip:x@10.0.0.9:5060;transport=UDP")
    left = registration_remove(sip_user=device.sip_user, contact_uri=asked)
    assert (left.expires_in == 0) is removed
