"""MAC addresses as people type them, stored one way: upper case, dash separated."""

import re

_SEPARATED = re.compile(r"^[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}$")
_CISCO_DOTTED = re.compile(r"^[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}$")
_BARE = re.compile(r"^[0-9A-Fa-f]{12}$")


class InvalidMac(ValueError):
    pass


def normalize_mac(value: str) -> str:
    """Return `XX-XX-XX-XX-XX-XX` for `00:15:65:12:34:56`, `00-15-65-12-34-56`,
    `0015.6512.3456` or `001565123456` in any case; raise InvalidMac otherwise."""
    text = (value or "").strip()
    if not (_SEPARATED.match(text) or _CISCO_DOTTED.match(text) or _BARE.match(text)):
        raise InvalidMac(f'"{value}" is not a MAC address')
    digits = re.sub(r"[^0-9A-Fa-f]", "", text).upper()
    return "-".join(digits[i : i + 2] for i in range(0, 12, 2))


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
