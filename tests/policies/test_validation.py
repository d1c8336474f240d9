import pytest
from django.core.exceptions import ValidationError

from policies.choices import PolicyKind
from policies.schema import settings_clean, settings_default
from policies.services import policy_create, policy_update
from portal.services import Actor

ADMIN = Actor.system("test")


def errors_of(kind, data, **kwargs) -> dict:
    with pytest.raises(ValidationError) as caught:
        settings_clean(kind, data, **kwargs)
    return caught.value.message_dict


def test_the_defaults_of_every_kind_are_valid():
    for kind in PolicyKind.values:
        assert settings_clean(kind, settings_default(kind)) == settings_default(kind)


def test_it_accepts_an_e164_number_or_a_sip_address_as_forwarding_target():
    assert settings_clean("calling", {"forward_to": "+14255550100"})["forward_to"] == "+14255550100"
    assert settings_clean("calling", {"forward_to": " sip:desk@example.com "})["forward_to"] == "sip:desk@example.com"


def test_it_rejects_a_forwarding_target_that_is_neither_a_number_nor_a_sip_address():
    errors = errors_of("calling", {"forward_to": "0425 555 0100"})
    assert list(errors) == ["forward_to"]
    assert "E.164" in errors["forward_to"][0]


def test_it_rejects_a_forwarding_target_when_forwarding_is_not_allowed():
    errors = errors_of("calling", {"call_forwarding": False, "forward_to": "+14255550100"})
    assert errors == {
        "forward_to": ["A forwarding target needs call forwarding allowed: allow it, or clear the target."]
    }


def test_it_rejects_a_forwarding_target_left_behind_when_forwarding_is_turned_off():
    base = settings_clean("calling", {"forward_to": "+14255550100"})
    assert "forward_to" in errors_of("calling", {"call_forwarding": False}, base=base)


def test_it_reports_every_bad_setting_at_once():
    errors = errors_of("ip_phone", {"language": "it", "time_zone": "Mars/Olympus", "hot_desking_timeout": 0})
    assert errors["language"] == ['"it" is not one of en, es, ja, de, fr, pt.']
    assert errors["time_zone"] == ['"Mars/Olympus" is not a time zone; use an IANA name like Europe/Paris or UTC.']
    assert errors["hot_desking_timeout"] == ["Must be between 1 and 1440."]


def test_it_rejects_settings_of_another_kind_naming_the_valid_ones():
    errors = errors_of("emergency_calling", {"language": "de"})
    assert errors == {
        "language": [
            '"language" is not a setting of emergency calling policies (emergency_location, notification_number).'
        ]
    }


@pytest.mark.parametrize("value", ["yes", 1, None, "true"])
def test_switches_must_be_true_or_false(value):
    assert errors_of("calling", {"voicemail": value}) == {"voicemail": ["Must be true or false."]}


@pytest.mark.parametrize("value", [True, 12.5, "ten", None])
def test_the_hot_desking_timeout_must_be_a_whole_number(value):
    assert errors_of("ip_phone", {"hot_desking_timeout": value}) == {"hot_desking_timeout": ["Must be a whole number."]}


def test_the_notification_number_must_be_e164():
    assert "notification_number" in errors_of("emergency_calling", {"notification_number": "911"})
    cleaned = settings_clean(
        "emergency_calling", {"notification_number": "+442079460000", "emergency_location": "1 Main St"}
    )
    assert cleaned == {"notification_number": "+442079460000", "emergency_location": "1 Main St"}


def test_it_rejects_an_unknown_kind():
    assert list(errors_of("voicemail", {})) == ["kind"]


def test_a_partial_update_keeps_the_other_settings(tenant_a):
    policy = policy_create(tenant=tenant_a, actor=ADMIN, kind="ip_phone", name="Lobby", settings={"language": "ja"})
    policy, _ = policy_update(policy=policy, actor=ADMIN, data={"settings": {"time_zone": "Asia/Tokyo"}})
    assert policy.settings == {**settings_default("ip_phone"), "language": "ja", "time_zone": "Asia/Tokyo"}
    assert policy.version == 2


def test_names_are_unique_per_kind_whatever_their_case(tenant_a, tenant_b):
    policy_create(tenant=tenant_a, actor=ADMIN, kind="calling", name="Sales")
    with pytest.raises(ValidationError) as caught:
        policy_create(tenant=tenant_a, actor=ADMIN, kind="calling", name=" sales ")
    assert caught.value.message_dict == {"name": ['A calling policy named "sales" already exists.']}
    policy_create(tenant=tenant_a, actor=ADMIN, kind="ip_phone", name="Sales")
    policy_create(tenant=tenant_b, actor=ADMIN, kind="calling", name="Sales")


def test_creating_reports_name_and_settings_errors_together(tenant_a):
    with pytest.raises(ValidationError) as caught:
        policy_create(tenant=tenant_a, actor=ADMIN, kind="calling", name="", settings={"voicemail": "no"})
    assert set(caught.value.message_dict) == {"name", "voicemail"}
