"""A device's effective policy settings in each vendor's own config keys, for the provisioning
server (gateway.provisioning.device_config_settings renders them into the served file).

Only what the phone itself acts on is mapped: UI language, time zone, whether the user may set
call forwarding (and the target its key offers), the voicemail key. Simultaneous ring, sign-in
mode, hot-desking and emergency settings are enforced by the service, not by the phone. Key names
follow the vendors' provisioning guides; Gigaset's DECT bases take none of these from a file."""

from datetime import datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from devices.choices import ConfigFormat
from devices.models import Device
from policies.selectors import device_effective_settings

VOICEMAIL_CODE = "*99*"

LANGUAGES = {
    ConfigFormat.YEALINK: {
        "en": "English",
        "es": "Spanish",
        "ja": "Japanese",
        "de": "German",
        "fr": "French",
        "pt": "Portuguese",
    },
    ConfigFormat.CISCO: {
        "en": "English-US",
        "es": "Spanish",
        "ja": "Japanese",
        "de": "German",
        "fr": "French",
        "pt": "Portuguese",
    },
    ConfigFormat.POLY: {
        "en": "English_United_States",
        "es": "Spanish_Spain",
        "ja": "Japanese_Japan",
        "de": "German_Germany",
        "fr": "French_France",
        "pt": "Portuguese_Portugal",
    },
    ConfigFormat.AUDIOCODES: {
        "en": "English",
        "es": "Spanish",
        "ja": "Japanese",
        "de": "German",
        "fr": "French",
        "pt": "Portuguese",
    },
    ConfigFormat.SNOM: {
        "en": "English",
        "es": "Espanol",
        "ja": "Japanese",
        "de": "Deutsch",
        "fr": "Francais",
        "pt": "Portugues",
    },
}


@cache
def _zone_offsets(name: str, year: int) -> tuple[timedelta, bool]:
    """The zone's standard UTC offset, and whether it observes daylight saving time."""
    zone = ZoneInfo(name)
    winter, summer = datetime(year, 1, 15, tzinfo=zone), datetime(year, 7, 15, tzinfo=zone)
    standard = winter.utcoffset() if not winter.dst() else summer.utcoffset()
    return standard, winter.utcoffset() != summer.utcoffset()


def _hours(offset: timedelta, *, hours_only: bool = False) -> str:
    """+1, -5, +5:30 (Yealink) or +01:00, -05:00, +05:30."""
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    if hours_only:
        return f"{sign}{hours}" + (f":{rest:02d}" if rest else "")
    return f"{sign}{hours:02d}:{rest:02d}"


def _yes(value: bool, yes: str = "1", no: str = "0") -> str:
    return yes if value else no


def device_config_settings(*, device: Device, config_format: str, now: datetime | None = None) -> dict[str, str]:
    """`config_format`'s keys and values for the device's effective settings."""
    values = device_effective_settings(device=device)
    standard, dst = _zone_offsets(values["time_zone"], (now or datetime.now()).year)
    language = LANGUAGES.get(config_format, {}).get(values["language"], "")
    voicemail = VOICEMAIL_CODE if values["voicemail"] else ""
    forwarding, target = values["call_forwarding"], values["forward_to"]
    if config_format == ConfigFormat.YEALINK:
        mapped = {
            "lang.gui": language,
            "local_time.time_zone": _hours(standard, hours_only=True),
            "local_time.summer_time": _yes(dst, "2", "0"),  # 2: automatic
            "features.fwd.allow": _yes(forwarding),
            "voice_mail.number.1": voicemail,
        }
        if target:
            mapped["forward.always.target"] = target  # offered by the key, not switched on
        return mapped
    if config_format == ConfigFormat.CISCO:
        return {
            "Language_Selection": language,
            "Time_Zone": f"GMT{_hours(standard)}",
            "Daylight_Saving_Time_Enable": _yes(dst, "Yes", "No"),
            "Cfwd_Setting": _yes(forwarding, "Yes", "No"),
            "Voice_Mail_Number": voicemail,
        }
    if config_format == ConfigFormat.POLY:
        return {
            "lcl.ml.lang": language,
            "tcpIpApp.sntp.gmtOffset": str(int(standard.total_seconds())),
            "tcpIpApp.sntp.daylightSavings.enable": _yes(dst),
            "divert.fwd.1.enabled": _yes(forwarding),
            "msg.mwi.1.callBackMode": "contact" if voicemail else "disabled",
            "msg.mwi.1.callBack": voicemail,
        }
    if config_format == ConfigFormat.AUDIOCODES:
        return {
            "personal_settings/language": language,
            "system/ntp/gmt_offset": _hours(standard),
            "system/daylight_saving/activate": _yes(dst, "ENABLE", "DISABLE"),
            "voip/services/call_forward/enabled": _yes(forwarding),
            "voip/services/msg_waiting_ind/voice_mail_number": voicemail,
        }
    if config_format == ConfigFormat.SNOM:
        mapped = {"language": language, "utc_offset": str(int(standard.total_seconds()))}
        if not forwarding:
            mapped["redirect_event"] = "none"  # read-only in the file: the user cannot turn it on
        return mapped
    return {}
