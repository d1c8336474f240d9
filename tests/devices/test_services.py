"""Device services (writes) and selectors (reads): the rules the browser and the API share."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils import timezone

from devices import services
from devices.choices import DeviceState
from devices.models import Device
from devices.selectors import (
    device_get,
    device_list,
    device_model_lookup,
    device_page,
    device_summary,
    sort_ordering,
)
from portal.choices import ActorType
from portal.models import AuditEvent
from portal.services import Actor
from tests.factories import DeviceFactory, device_model, registered


@pytest.fixture
def actor(admin_a):
    return Actor.of_user(admin_a.user)


def errors_of(excinfo) -> dict:
    return excinfo.value.message_dict


# --- device_onboard -----------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["00:15:65:ab:cd:ef", "00-15-65-AB-CD-EF", "0015.65ab.cdef", "001565ABCDEF"])
def test_onboarding_stores_the_mac_in_canonical_form(tenant_a, actor, typed):
    device = services.device_onboard(tenant=tenant_a, actor=actor, mac=typed, location="Lab")
    assert device.mac == "00-15-65-AB-CD-EF"
    assert device.sip_user == "001565abcdef"
    assert device.state == DeviceState.WAITING_ON_ACTIVATION


def test_onboarding_trims_text_and_finds_the_model(tenant_a, actor):
    device = services.device_onboard(
        tenant=tenant_a, actor=actor, mac="001565000001", location="  Lobby ", display_name=" Front desk ",
        model="yealink t54w",
    )
    device.refresh_from_db()
    assert (device.location, device.display_name) == ("Lobby", "Front desk")
    assert device.model == device_model("Yealink", "T54W")
    assert device.tenant == tenant_a


def test_onboarding_is_audited(tenant_a, actor, admin_a):
    device = services.device_onboard(tenant=tenant_a, actor=actor, mac="001565000001", location="Lobby")
    event = AuditEvent.objects.get()
    assert (event.tenant, event.action, event.object_type, event.object_id) == (
        tenant_a, "device.onboard", "device", device.pk,
    )
    assert (event.actor_type, event.actor_user, event.details) == (
        ActorType.USER, admin_a.user, {"mac": "00-15-65-00-00-01"},
    )


def test_onboarding_reports_every_error_at_once_and_writes_nothing(tenant_a, actor):
    with pytest.raises(ValidationError) as excinfo:
        services.device_onboard(
            tenant=tenant_a, actor=actor, mac="00-15-65-ZZ", location=" ", display_name="x" * 101, model="Nokia 3310",
        )
    assert errors_of(excinfo) == {
        "mac": ['"00-15-65-ZZ" is not a MAC address'],
        "location": ["This field is required."],
        "display_name": ["Ensure this value has at most 100 characters."],
        "model": ['"Nokia 3310" is not a known device model'],
    }
    assert not Device.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_mac_is_unique_across_tenants_without_naming_the_owner(tenant_a, tenant_b, actor, admin_b):
    DeviceFactory(tenant=tenant_a, mac="00-15-65-12-34-56")
    with pytest.raises(ValidationError) as mine:
        services.device_onboard(tenant=tenant_a, actor=actor, mac="00:15:65:12:34:56", location="Lab")
    with pytest.raises(ValidationError) as theirs:
        services.device_onboard(
            tenant=tenant_b, actor=Actor.of_user(admin_b.user), mac="0015.6512.3456", location="Lab"
        )
    assert errors_of(mine) == {"mac": ["00-15-65-12-34-56 is already in your inventory"]}
    assert errors_of(theirs) == {"mac": ["00-15-65-12-34-56 is already onboarded by another organization"]}
    assert Device.objects.count() == 1


# --- device_update ------------------------------------------------------------------------------


@pytest.fixture
def device_a(tenant_a):
    return DeviceFactory(tenant=tenant_a, display_name="Lobby phone", location="Lobby")


def test_update_changes_the_editable_fields_and_audits_old_and_new(device_a, actor):
    services.device_update(
        device=device_a, actor=actor,
        data={"location": "Floor 2", "model": "T54W", "display_name": "Lobby phone", "phone_number": "+1 555 0100"},
    )
    device_a.refresh_from_db()
    assert (device_a.location, device_a.model.model, device_a.phone_number) == ("Floor 2", "T54W", "+1 555 0100")
    event = AuditEvent.objects.get()
    assert event.action == "device.update"
    assert event.details == {
        "location": ["Lobby", "Floor 2"], "model": ["", "Yealink T54W"], "phone_number": ["", "+1 555 0100"],
    }


def test_an_update_that_changes_nothing_writes_nothing(device_a, actor):
    before = Device.objects.get(pk=device_a.pk).updated_at
    services.device_update(device=device_a, actor=actor, data={"location": " Lobby ", "display_name": "Lobby phone"})
    assert Device.objects.get(pk=device_a.pk).updated_at == before
    assert not AuditEvent.objects.exists()


def test_an_update_ignores_fields_that_are_not_editable(device_a, actor):
    mac, tenant = device_a.mac, device_a.tenant
    services.device_update(
        device=device_a, actor=actor,
        data={"mac": "00-00-00-00-00-01", "state": DeviceState.SIGNED_IN, "tenant": None, "location": "Lab"},
    )
    device_a.refresh_from_db()
    assert (device_a.mac, device_a.tenant, device_a.state) == (mac, tenant, DeviceState.WAITING_ON_ACTIVATION)
    assert device_a.location == "Lab"


def test_an_update_with_errors_saves_nothing(device_a, actor):
    with pytest.raises(ValidationError) as excinfo:
        services.device_update(device=device_a, actor=actor, data={"location": "", "display_name": "Renamed"})
    assert errors_of(excinfo) == {"location": ["This field is required."]}
    device_a.refresh_from_db()
    assert device_a.display_name == "Lobby phone"
    assert not AuditEvent.objects.exists()


def test_an_update_can_clear_the_model(device_a, actor):
    device_a.model = device_model("Poly", "VVX 450")
    device_a.save()
    services.device_update(device=device_a, actor=actor, data={"model": None})
    device_a.refresh_from_db()
    assert device_a.model is None
    assert AuditEvent.objects.get().details == {"model": ["Poly VVX 450", ""]}


# --- devices_delete -----------------------------------------------------------------------------


def test_bulk_delete_removes_only_the_callers_devices_and_audits_each(tenant_a, tenant_b, actor):
    mine = DeviceFactory.create_batch(3, tenant=tenant_a)
    theirs = DeviceFactory(tenant=tenant_b)
    removed = services.devices_delete(tenant=tenant_a, actor=actor, ids=[mine[0].pk, mine[1].pk, theirs.pk, 999999])
    assert removed == 2
    assert set(Device.objects.values_list("pk", flat=True)) == {mine[2].pk, theirs.pk}
    events = AuditEvent.objects.order_by("object_id")
    assert [(e.tenant_id, e.action, e.object_id, e.object_repr) for e in events] == [
        (tenant_a.pk, "device.delete", d.pk, d.display_name) for d in mine[:2]
    ]


def test_deleting_one_device_is_audited(device_a, actor):
    services.device_delete(device=device_a, actor=actor)
    assert not Device.objects.exists()
    assert AuditEvent.objects.get().action == "device.delete"


# --- selectors ----------------------------------------------------------------------------------


def test_device_get_treats_another_tenants_device_as_missing(device_a, tenant_b):
    assert device_get(tenant=device_a.tenant, pk=device_a.pk) == device_a
    with pytest.raises(Http404):
        device_get(tenant=tenant_b, pk=device_a.pk)


def test_device_list_is_scoped_and_rejects_bad_filters(device_a, tenant_b):
    DeviceFactory(tenant=tenant_b)
    assert list(device_list(tenant=device_a.tenant)) == [device_a]
    with pytest.raises(ValidationError) as excinfo:
        device_list(tenant=device_a.tenant, filters={"state": "asleep"})
    assert list(errors_of(excinfo)) == ["state"]


def test_device_page_pages_the_filtered_list(tenant_a):
    DeviceFactory.create_batch(5, tenant=tenant_a, location="Lab")
    DeviceFactory(tenant=tenant_a, location="Elsewhere")
    arguments = dict(tenant=tenant_a, filters={"location": "lab"}, sort="mac", page_size=3)
    first = device_page(cursor=None, **arguments)
    second = device_page(cursor=first.next_cursor, **arguments)
    macs = [d.mac for d in first.items + second.items]
    assert macs == sorted(macs) and len(macs) == 5
    assert second.next_cursor is None


def test_the_summary_counts_states_and_live_registrations(tenant_a, tenant_b):
    DeviceFactory.create_batch(2, tenant=tenant_a)
    registered(DeviceFactory(tenant=tenant_a, state=DeviceState.WAITING_FOR_SIGN_IN), contact="sip:a@192.0.2.1")
    expired = DeviceFactory(tenant=tenant_a, state=DeviceState.SIGNED_IN)
    registered(expired, contact="sip:b@192.0.2.2", minutes=-1)
    registered(DeviceFactory(tenant=tenant_a, state=DeviceState.SIGNED_IN), contact="sip:c@192.0.2.3")
    registered(DeviceFactory(tenant=tenant_b, state=DeviceState.SIGNED_IN), contact="sip:d@192.0.2.4")
    assert device_summary(tenant=tenant_a) == {
        "total": 5, "waiting_on_activation": 2, "waiting_for_sign_in": 1, "signed_in": 2, "online": 2, "offline": 3,
    }


def test_the_summary_of_an_empty_tenant_is_zeros(tenant_a):
    assert set(device_summary(tenant=tenant_a).values()) == {0}


@pytest.mark.parametrize(
    "sort, ordering",
    [
        (None, ["-created_at", "-id"]),
        ("", ["-created_at", "-id"]),
        ("mac", ["mac", "id"]),
        ("-mac", ["-mac", "-id"]),
        ("-created", ["created_at", "id"]),
        ("vendor", ["model__vendor", "model__model", "id"]),
        ("-last_seen", ["-last_seen_at", "-id"]),
        ("tenant", ["-created_at", "-id"]),
        ("-id; DROP TABLE", ["-created_at", "-id"]),
    ],
)
def test_sort_keys_map_to_orderings_that_end_on_the_primary_key(sort, ordering):
    assert sort_ordering(sort) == ordering


@pytest.mark.parametrize("value", ["T54W", "t54w", "Yealink T54W", "YEALINK t54w"])
def test_a_model_is_found_by_the_names_people_use(db, value):
    assert device_model_lookup(value) == device_model("Yealink", "T54W")


def test_a_model_is_found_by_id_by_name_with_spaces_or_passed_through(db):
    vvx = device_model("Poly", "VVX 450")
    assert device_model_lookup(vvx.pk) == device_model_lookup(str(vvx.pk)) == vvx
    assert device_model_lookup("VVX 450") == device_model_lookup("Poly VVX 450") == vvx
    assert device_model_lookup(vvx) is vvx
    assert device_model_lookup(None) is device_model_lookup("") is None


@pytest.mark.parametrize("value", ["Nokia 3310", "999999", "Yealink"])
def test_an_unknown_model_is_an_error(db, value):
    with pytest.raises(ValueError, match="is not a known device model"):
        device_model_lookup(value)


def test_online_means_a_registration_that_has_not_expired(device_a):
    assert not device_a.online
    registered(device_a, contact="sip:x@192.0.2.1")
    assert device_a.online
    device_a.registration_expires_at = timezone.now() - timedelta(seconds=1)
    assert not device_a.online


@pytest.mark.parametrize(
    ("named", "vendor", "model"),
    [("T54W", "Yealink", "T54W"), ("  Yealink   T54W ", "Yealink", "T54W"), ("vvx  450", "Poly", "VVX 450"),
     ("poly vvx 450", "Poly", "VVX 450"), ("Cisco MPP 8851", "Cisco", "8851"), ("Polycom VVX 450", "Poly", "VVX 450")],
)
def test_the_add_form_and_csv_imports_name_models_by_the_same_rule(tenant_a, actor, named, vendor, model):
    from devices.catalog import device_model_catalog, device_model_key

    expected = device_model(vendor, model)
    assert device_model_catalog()[device_model_key(named)] == expected.pk  # what a CSV import uses
    device = services.device_onboard(tenant=tenant_a, actor=actor, mac="00:15:65:aa:bb:01", location="L", model=named)
    assert device.model == expected


def test_an_unknown_model_is_refused_by_name(tenant_a, actor):
    with pytest.raises(ValidationError, match="is not a known device model"):
        services.device_onboard(tenant=tenant_a, actor=actor, mac="00:15:65:aa:bb:02", location="L", model="T99Z")
