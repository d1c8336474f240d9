"""What each kind of policy holds: its settings, their defaults, and the rules that validate them.
Kept as data so that the service, the forms, the API and the provisioning configs share one list."""

import re
import zoneinfo
from dataclasses import dataclass
from functools import cache

from django.core.exceptions import ValidationError

from policies.choices import Language, PolicyKind, SignInMode

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
SIP_URI = re.compile(r"^sips?:[A-Za-z0-9.!~*'()&=+$,;?/_%-]+@[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
PHONE_HINT = "Enter a phone number in E.164 form, like +14255550100"


@cache
def time_zones() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


@dataclass(frozen=True)
class Setting:
    key: str
    label: str
    type: str  # "bool", "int", "str", "choice"
    default: object
    help: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    min: int | None = None
    max: int | None = None
    max_length: int = 200
    pattern: re.Pattern | None = None
    pattern_error: str = ""

    def display(self, value) -> str:
        if self.type == "bool":
            return "Yes" if value else "No"
        if self.type == "choice":
            return dict(self.choices).get(value, str(value))
        if value in ("", None):
            return "—"
        return f"{value}"


SETTINGS: dict[str, tuple[Setting, ...]] = {
    PolicyKind.CALLING: (
        Setting(
            "call_forwarding",
            "Call forwarding allowed",
            "bool",
            True,
            help="Users may forward calls from the phone (feature codes *32* to *35*).",
        ),
        Setting(
            "forward_to",
            "Forward calls to",
            "str",
            "",
            max_length=255,
            help="Optional target the phone's forwarding key offers: +E.164 number or sip:user@host.",
            pattern=re.compile(f"{E164.pattern}|{SIP_URI.pattern}"),
            pattern_error=f"{PHONE_HINT}, or a SIP address like sip:desk@example.com.",
        ),
        Setting("simultaneous_ring", "Simultaneous ring allowed", "bool", True),
        Setting("voicemail", "Voicemail", "bool", True, help="Calls unanswered go to voicemail (*99* on the phone)."),
    ),
    PolicyKind.IP_PHONE: (
        Setting("sign_in_mode", "Sign-in mode", "choice", SignInMode.USER, choices=tuple(SignInMode.choices)),
        Setting(
            "hot_desking_timeout",
            "Hot-desking idle timeout (minutes)",
            "int",
            120,
            min=1,
            max=1440,
            help="A common area phone signs a hot-desking user out after this long without use.",
        ),
        Setting("language", "Phone language", "choice", Language.EN, choices=tuple(Language.choices)),
        Setting("time_zone", "Time zone", "choice", "UTC", help="An IANA time zone, like Europe/Paris."),
    ),
    PolicyKind.EMERGENCY_CALLING: (
        Setting(
            "emergency_location",
            "Emergency location",
            "str",
            "",
            max_length=200,
            help="The address sent with an emergency call, for dispatch.",
        ),
        Setting(
            "notification_number",
            "Notification number",
            "str",
            "",
            max_length=16,
            pattern=E164,
            pattern_error=f"{PHONE_HINT}.",
            help="Called when someone on this phone dials an emergency number (security desk).",
        ),
    ),
}


def setting_choices(setting: Setting) -> tuple[tuple[str, str], ...]:
    if setting.key == "time_zone":
        return tuple((name, name) for name in time_zones())
    return setting.choices


def settings_default(kind: str) -> dict:
    return {s.key: s.default for s in SETTINGS[kind]}


def settings_clean(kind: str, data, *, base: dict | None = None) -> dict:
    """Validate `data` (a partial update of `base`, or of the defaults) into a complete settings dict.
    Raises ValidationError keyed by setting, with messages a person can act on."""
    if kind not in SETTINGS:
        raise ValidationError({"kind": [f'"{kind}" is not a kind of policy ({", ".join(PolicyKind.values)}).']})
    if not isinstance(data, dict):
        raise ValidationError({"settings": ["Expected an object of settings."]})
    known = {s.key: s for s in SETTINGS[kind]}
    errors: dict[str, list[str]] = {}
    for key in data:
        if key not in known:
            label = PolicyKind(kind).label.lower()
            errors[key] = [f'"{key}" is not a setting of {label} policies ({", ".join(known)}).']
    cleaned = {**settings_default(kind), **{k: v for k, v in (base or {}).items() if k in known}}
    for key, setting in known.items():
        if key not in data:
            continue
        try:
            cleaned[key] = _clean_value(setting, data[key])
        except ValidationError as error:
            errors[key] = error.messages
    if not errors:
        _check_together(kind, cleaned, errors)
    if errors:
        raise ValidationError(errors)
    return cleaned


def _clean_value(setting: Setting, value):
    if setting.type == "bool":
        if not isinstance(value, bool):
            raise ValidationError("Must be true or false.")
        return value
    if setting.type == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value.strip())
            else:
                raise ValidationError("Must be a whole number.")
        if (setting.min is not None and value < setting.min) or (setting.max is not None and value > setting.max):
            raise ValidationError(f"Must be between {setting.min} and {setting.max}.")
        return value
    if not isinstance(value, str):
        raise ValidationError("Must be text.")
    value = value.strip()
    if setting.type == "choice":
        allowed = [key for key, _ in setting_choices(setting)]
        if value not in allowed:
            if setting.key == "time_zone":
                raise ValidationError(f'"{value}" is not a time zone; use an IANA name like Europe/Paris or UTC.')
            raise ValidationError(f'"{value}" is not one of {", ".join(allowed)}.')
        return value
    if len(value) > setting.max_length:
        raise ValidationError(f"At most {setting.max_length} characters.")
    if value and setting.pattern is not None and not setting.pattern.fullmatch(value):
        raise ValidationError(setting.pattern_error)
    return value


def _check_together(kind: str, cleaned: dict, errors: dict) -> None:
    if kind == PolicyKind.CALLING and cleaned["forward_to"] and not cleaned["call_forwarding"]:
        errors["forward_to"] = ["A forwarding target needs call forwarding allowed: allow it, or clear the target."]
