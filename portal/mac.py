"""MAC addresses as people type them, stored one way: upper case, dash separated."""

import re

_PAIR = "([0-9A-Fa-f]{2})"
# Each format with its six pairs of digits as groups: one match both checks and splits (a CSV
# import normalizes a million of these).
_FORMATS = (
    (re.compile(rf"{_PAIR}([:-]){_PAIR}\2{_PAIR}\2{_PAIR}\2{_PAIR}\2{_PAIR}"), (1, 3, 4, 5, 6, 7)),  # 00:15:65:…
    (re.compile(rf"{_PAIR}{_PAIR}\.{_PAIR}{_PAIR}\.{_PAIR}{_PAIR}"), (1, 2, 3, 4, 5, 6)),  # Cisco 0015.6512.3456
    (re.compile(_PAIR * 6), (1, 2, 3, 4, 5, 6)),  # bare
)


class InvalidMac(ValueError):
    pass


def normalize_mac(value: str) -> str:
    """Return `XX-XX-XX-XX-XX-XX` for `00:15:65:12:34:56`, `00-15-65-12-34-56`,
    `0015.6512.3456` or `001565123456` in any case; raise InvalidMac otherwise."""
    text = (value or "").strip()
    for pattern, pairs in _FORMATS:
        if match := pattern.fullmatch(text):
            return "-".join(match.group(*pairs)).upper()
    raise InvalidMac(f'"{value}" is not a MAC address')


def mac_digits(mac: str) -> str:
    """`00-15-65-12-34-56` -> `001565123456` (the SIP user and the vendors' file names)."""
    return mac.replace("-", "").lower()


def mac_fragment(value: str) -> str | None:
    """Hex digits of a partial MAC typed in a search box, in canonical dashed form when it
    can be placed, else None. `3456`, `34:56`, `34-56` all become `34-56`."""
    digits = re.sub(r"[\s:.\-]", "", value or "")
    if len(digits) < 2 or not re.fullmatch(r"[0-9A-Fa-f]+", digits):
        return None
    return digits.upper()
