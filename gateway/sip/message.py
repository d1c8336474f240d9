"""SIP messages (RFC 3261 §7, §20): requests, responses, headers and the values we read.

Plain data and small parsers of header *values*; the wire parser lives in ``parser.py``.
Every value parser raises ``ValueError`` on bad input; ``parser.py`` turns that into
``ParseError``.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote

SIP_VERSION = "SIP/2.0"
BRANCH_MAGIC = "z9hG4bK"  # RFC 3261 §8.1.1.7: marks an RFC 3261 branch

# RFC 3261 §7.3.3 and the IANA registry of compact forms.
COMPACT_FORMS = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

# Spellings whose capitalisation is not simply "Title-Case" per dash-separated word.
_CANONICAL = {
    name.lower(): name
    for name in (
        "Call-ID",
        "CSeq",
        "WWW-Authenticate",
        "MIME-Version",
        "RAck",
        "RSeq",
        "SIP-ETag",
        "SIP-If-Match",
        "P-Asserted-Identity",
        "P-Preferred-Identity",
    )
}

# RFC 3261 §25.1 token characters.
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_HOST_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.?")
# Characters that may never appear in a header value on the wire (CR/LF, NUL, other controls but HT).
_CTL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_SPACE_OR_CTL_RE = re.compile(r"[\s\x00-\x1f\x7f]")


def is_token(value: str) -> bool:
    return _TOKEN_RE.fullmatch(value) is not None


@functools.lru_cache(maxsize=1024)
def canonical_name(name: str) -> str:
    """Full, conventionally capitalised header name; compact forms expanded.

    A function of the lower-cased name, so canonical names compare case-insensitively.
    """
    lower = name.lower()
    if lower in COMPACT_FORMS:
        return COMPACT_FORMS[lower]
    if lower in _CANONICAL:
        return _CANONICAL[lower]
    return "-".join(part[:1].upper() + part[1:] for part in lower.split("-"))


class Headers:
    """Ordered multi-dict of header fields; names are case-insensitive and stored canonical."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = []
        for name, value in items:
            self.add(name, value)

    @classmethod
    def trusted(cls, items: list[tuple[str, str]]) -> Headers:
        """Fields the caller already checked and named canonically (the wire parser)."""
        new = cls()
        new._items = items
        return new

    def add(self, name: str, value: str) -> None:
        self._items.append(self._field(name, value))

    @staticmethod
    def _field(name: str, value: str) -> tuple[str, str]:
        if not is_token(name):
            raise ValueError(f"invalid header name {name!r}")
        if _CTL_RE.search(value):
            # A CR or LF here would let a caller inject headers of its own.
            raise ValueError(f"control character in {name} value")
        return canonical_name(name), value

    def get(self, name: str, default: str | None = None) -> str | None:
        key = canonical_name(name)
        for item_name, value in self._items:
            if item_name == key:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        key = canonical_name(name)
        return [value for item_name, value in self._items if item_name == key]

    def set(self, name: str, value: str) -> None:
        """Replace every field of that name by one, at the place of the first."""
        field_ = self._field(name, value)
        key = field_[0]
        index = next((i for i, (n, _) in enumerate(self._items) if n == key), len(self._items))
        self._items = [item for item in self._items if item[0] != key]
        self._items.insert(index, field_)

    def replace_first(self, name: str, value: str) -> None:
        """Change the first field of that name in place (e.g. stamping the top Via)."""
        field_ = self._field(name, value)
        for i, (item_name, _) in enumerate(self._items):
            if item_name == field_[0]:
                self._items[i] = field_
                return
        raise KeyError(name)

    def remove(self, name: str) -> None:
        key = canonical_name(name)
        self._items = [(n, v) for n, v in self._items if n != key]

    def prepend(self, name: str, value: str) -> None:
        self.add(name, value)
        self._items.insert(0, self._items.pop())

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def copy(self) -> Headers:
        new = Headers()
        new._items = list(self._items)
        return new

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


def split_values(value: str) -> list[str]:
    """Split a comma-separated header value, respecting quotes and <...> (RFC 3261 §7.3.1)."""
    if '"' not in value and "<" not in value and ">" not in value:
        parts = [part.strip() for part in value.split(",")]  # the common case, fast
        if not all(parts):
            raise ValueError("empty element in list")
        return parts
    parts = []
    current: list[str] = []
    in_quotes = in_angle = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif in_quotes and char == "\\":
            escaped = True
        elif char == '"' and not in_angle:
            in_quotes = not in_quotes
        elif not in_quotes and char == "<":
            in_angle = True
        elif not in_quotes and char == ">":
            in_angle = False
        elif char == "," and not in_quotes and not in_angle:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if in_quotes or in_angle:
        raise ValueError("unterminated quote or angle bracket")
    parts.append("".join(current).strip())
    if any(not part for part in parts):
        raise ValueError("empty element in list")
    return parts


def _split_params(text: str) -> dict[str, str | None]:
    """``;a=b;c`` → {"a": "b", "c": None}. Names lower-cased; quoted values kept quoted."""
    params: dict[str, str | None] = {}
    if not text:
        return params
    if not text.startswith(";"):
        raise ValueError(f"expected ';' before parameters in {text!r}")
    for raw in _split_outside_quotes(text[1:], ";"):
        name, sep, val = raw.partition("=")
        name = name.strip()
        if not is_token(name):
            raise ValueError(f"invalid parameter name {name!r}")
        if sep:
            val = val.strip()
            if not val:
                raise ValueError(f"empty value for parameter {name!r}")
            if val.startswith('"'):
                if len(val) < 2 or not val.endswith('"'):
                    raise ValueError(f"unterminated quoted value for {name!r}")
            elif not _PARAM_VALUE_RE.fullmatch(val):
                raise ValueError(f"invalid value for parameter {name!r}")
            params[name.lower()] = val
        else:
            params[name.lower()] = None
    return params


# Token, plus ':' '[' ']' for IPv6 in received/maddr (RFC 3261 §25.1 gen-value / host).
_PARAM_VALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+")


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    if '"' not in text:
        return text.split(sep)
    parts: list[str] = []
    current: list[str] = []
    in_quotes = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif in_quotes and char == "\\":
            escaped = True
        elif char == '"':
            in_quotes = not in_quotes
        elif char == sep and not in_quotes:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if in_quotes:
        raise ValueError("unterminated quoted string")
    parts.append("".join(current))
    return parts


def _format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


# Fast paths for the shapes phones nearly always send. What these match, the general parsers below
# (``parse_general``) accept too, with the same result (test_parser_fuzz.py compares them); anything
# else takes the general way, which also says what is wrong.
_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_GEN_VALUE = r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+"
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.?"
_PORT = r"[1-9][0-9]{0,3}|[1-5][0-9]{4}"  # 1..59999: a subset of the valid ports is enough here
_PLAIN_PARAMS = rf"(?:;{_TOKEN}(?:={_GEN_VALUE})?)*"
_PLAIN_URI = rf"(sips?):(?:([A-Za-z0-9\-_.!~*'()&=+$,;/%:]+)@)?({_HOST})(?::({_PORT}))?({_PLAIN_PARAMS})"
_PLAIN_URI_RE = re.compile(_PLAIN_URI)
_PLAIN_NAME_ADDR_RE = re.compile(rf'("[^"\\\x00-\x1f\x7f]*" *|(?:{_TOKEN} +)+)?<({_PLAIN_URI})>({_PLAIN_PARAMS})')
_PLAIN_VIA_RE = re.compile(
    rf"SIP/2\.0/({_TOKEN}) ({_HOST})(?::({_PORT}))?"
    rf"((?:;(?!(?i:rport)=){_TOKEN}(?:={_GEN_VALUE})?|;(?i:rport)=(?:{_PORT}))*)"
)

# For checks that need no object: a value these match is one valid Via / name-addr.
plain_via = _PLAIN_VIA_RE.fullmatch
plain_name_addr = _PLAIN_NAME_ADDR_RE.fullmatch


def _plain_params(text: str) -> dict[str, str | None]:
    """``_split_params`` for text that matched ``_PLAIN_PARAMS``: no quotes, no spaces."""
    params: dict[str, str | None] = {}
    if text:
        for raw in text[1:].split(";"):
            name, sep, val = raw.partition("=")
            params[name.lower()] = val if sep else None
    return params


def parse_hostport(text: str, *, default_port: int | None = None) -> tuple[str, int | None]:
    """``host[:port]`` with IPv4, ``[IPv6]`` or a domain name; port 1..65535."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"unterminated IPv6 reference in {text!r}")
        host, rest = text[: end + 1], text[end + 1 :]
        ipaddress.IPv6Address(host[1:-1])
        if rest and not rest.startswith(":"):
            raise ValueError(f"junk after IPv6 reference in {text!r}")
        port_text = rest[1:] if rest else None
    else:
        host, sep, port_text_raw = text.partition(":")
        port_text = port_text_raw if sep else None
        if not _HOST_RE.fullmatch(host):
            raise ValueError(f"invalid host {host!r}")
    port = default_port
    if port_text is not None:
        if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
            raise ValueError(f"invalid port {port_text!r}")
        port = int(port_text)
        if not 0 < port < 65536:
            raise ValueError(f"port out of range {port}")
    return host.lower(), port


def _format_hostport(host: str, port: int | None) -> str:
    return host if port is None else f"{host}:{port}"


_USERINFO_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/%:]+")


@dataclass
class SipUri:
    """``sip:user@host:port;params?headers`` (RFC 3261 §19.1)."""

    host: str
    user: str | None = None
    port: int | None = None
    scheme: str = "sip"
    params: dict[str, str | None] = field(default_factory=dict)
    headers: str = ""  # raw "?a=b&c=d" part without the "?"; kept, never interpreted

    @classmethod
    def parse(cls, text: str) -> SipUri:
        text = text.strip()
        plain = _PLAIN_URI_RE.fullmatch(text)
        if plain is not None:
            scheme, user, host, port, params_text = plain.groups()
            return cls(host.lower(), user, int(port) if port else None, scheme, _plain_params(params_text))
        return cls.parse_general(text)

    @classmethod
    def parse_general(cls, text: str) -> SipUri:
        """``parse`` without its fast path."""
        text = text.strip()
        scheme, sep, rest = text.partition(":")
        scheme = scheme.lower()
        if not sep or scheme not in ("sip", "sips"):
            raise ValueError(f"not a sip: or sips: URI: {text!r}")
        if _SPACE_OR_CTL_RE.search(rest):
            raise ValueError(f"whitespace or control character in URI {text!r}")
        rest, _, headers = rest.partition("?")
        user: str | None = None
        if "@" in rest:
            userinfo, _, rest = rest.rpartition("@")
            if not userinfo or not _USERINFO_RE.fullmatch(userinfo):
                raise ValueError(f"invalid user part in {text!r}")
            user = userinfo
        hostport, semi, params_text = rest.partition(";")
        host, port = parse_hostport(hostport)
        params = _split_params(semi + params_text) if semi else {}
        return cls(
            host=host,
            user=user,
            port=port,
            scheme=scheme,
            params=params,
            headers=headers,
        )

    @property
    def transport(self) -> str:
        """Transport the URI asks for, lower case; RFC 3263 default is UDP for sip:."""
        value = self.params.get("transport")
        if value:
            return value.lower()
        return "tls" if self.scheme == "sips" else "udp"

    def same_as(self, other: SipUri) -> bool:
        """URI equality as RFC 3261 §19.1.4 has it: the user part exactly (escapes decoded),
        everything else in any case; a port only equals the same port (an absent one is not 5060);
        transport, user, ttl, method and maddr must agree, other parameters only where both have
        them; headers all, in any order."""
        mine_user = unquote(self.user) if self.user is not None else None
        their_user = unquote(other.user) if other.user is not None else None
        if (self.scheme, mine_user, self.host, self.port) != (other.scheme, their_user, other.host, other.port):
            return False
        if _uri_headers(self.headers) != _uri_headers(other.headers):
            return False
        mine, theirs = _folded(self.params), _folded(other.params)
        for name in mine.keys() | theirs.keys():
            if name in mine and name in theirs:
                if mine[name] != theirs[name]:
                    return False
            elif name in _URI_PARAMS_BOTH_OR_NEITHER:
                return False
        return True

    def without_headers(self) -> SipUri:
        return SipUri(self.host, self.user, self.port, self.scheme, dict(self.params), "")

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        headers = f"?{self.headers}" if self.headers else ""
        return f"{self.scheme}:{user}{_format_hostport(self.host, self.port)}{_format_params(self.params)}{headers}"


_URI_PARAMS_BOTH_OR_NEITHER = frozenset({"transport", "user", "ttl", "method", "maddr"})


def _folded(params: dict[str, str | None]) -> dict[str, str | None]:
    return {name.lower(): None if value is None else unquote(value).lower() for name, value in params.items()}


def _uri_headers(text: str) -> dict[str, str]:
    """`?subject=x&priority=urgent` as {name: value}, names in any case (§19.1.4)."""
    pairs = (part.partition("=") for part in text.split("&") if part)
    return {unquote(name).lower(): unquote(value) for name, _, value in pairs}


_ABSOLUTE_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:[^\s<>\"]+")


def check_request_uri(text: str) -> None:
    """Request-URI: a valid SIP URI, or another absolute URI such as tel: (RFC 3261 §25.1)."""
    if text.lower().startswith(("sip:", "sips:")):
        SipUri.parse(text)
    elif not _ABSOLUTE_URI_RE.fullmatch(text):
        raise ValueError(f"invalid Request-URI {text!r}")


@dataclass
class NameAddr:
    """From/To/Contact value: ``"Name" <uri>;tag=x`` or ``uri;tag=x`` (RFC 3261 §20.10)."""

    uri: str
    display_name: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        text = text.strip()
        plain = _PLAIN_NAME_ADDR_RE.fullmatch(text)
        if plain is not None:
            display, uri, params_text = plain.group(1, 2, 8)
            return cls(uri=uri, display_name=display.strip() if display else None, params=_plain_params(params_text))
        return cls.parse_general(text)

    @classmethod
    def parse_general(cls, text: str) -> NameAddr:
        """``parse`` without its fast path."""
        text = text.strip()
        if not text:
            raise ValueError("empty name-addr")
        if "<" in text:
            display, _, rest = _split_display_name(text)
            uri, close, after = rest.partition(">")
            if not close:
                raise ValueError(f"unterminated '<' in {text!r}")
            uri = uri.strip()
            params = _split_params(after.strip())
        else:
            # Without brackets, parameters after the URI belong to the header (§20.10),
            # and the URI may not contain ',', ';' or '?'.
            display = None
            uri, semi, params_text = text.partition(";")
            params = _split_params(semi + params_text) if semi else {}
            if "?" in uri or "," in uri:
                raise ValueError(f"addr-spec without brackets may not contain '?' or ',': {text!r}")
        if uri.lower().startswith(("sip:", "sips:")):
            SipUri.parse(uri)
        elif not _ABSOLUTE_URI_RE.fullmatch(uri):
            raise ValueError(f"invalid URI {uri!r}")
        return cls(uri=uri, display_name=display, params=params)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @property
    def sip_uri(self) -> SipUri:
        return SipUri.parse(self.uri)

    def __str__(self) -> str:
        display = f"{self.display_name} " if self.display_name else ""
        return f"{display}<{self.uri}>{_format_params(self.params)}"


def _split_display_name(text: str) -> tuple[str | None, str, str]:
    """Split ``display <rest`` into (display or None, "<", rest)."""
    if text.startswith('"'):
        i, escaped = 1, False
        while i < len(text):
            char = text[i]
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                break
            i += 1
        else:
            raise ValueError(f"unterminated display name in {text!r}")
        display = text[: i + 1]
        rest = text[i + 1 :].lstrip()
        if not rest.startswith("<"):
            raise ValueError(f"expected '<' after display name in {text!r}")
        return display, "<", rest[1:]
    display_text, _, rest = text.partition("<")
    display_text = display_text.strip()
    if display_text and not all(is_token(word) for word in display_text.split()):
        raise ValueError(f"invalid unquoted display name {display_text!r}")
    return display_text or None, "<", rest


_VIA_RE = re.compile(r"SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+([^;\s]+)\s*(;.*)?", re.IGNORECASE | re.DOTALL)


@dataclass
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=z9hG4bK...;rport;received=...``."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Via:
        text = text.strip()
        plain = _PLAIN_VIA_RE.fullmatch(text)
        if plain is not None:
            transport, host, port, params_text = plain.groups()
            return cls(transport.upper(), host.lower(), int(port) if port else None, _plain_params(params_text))
        return cls.parse_general(text)

    @classmethod
    def parse_general(cls, text: str) -> Via:
        """``parse`` without its fast path."""
        text = text.strip()
        match = _VIA_RE.fullmatch(text)
        if not match:
            raise ValueError(f"invalid Via {text!r}")
        transport, hostport, params_text = match.groups()
        host, port = parse_hostport(hostport)
        params = _split_params((params_text or "").strip())
        rport = params.get("rport")
        if rport is not None and not (rport.isascii() and rport.isdigit() and 0 < int(rport) < 65536):
            raise ValueError(f"invalid rport {rport!r}")
        return cls(transport=transport.upper(), host=host, port=port, params=params)

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The port filled in by the server per RFC 3581, if any."""
        value = self.params.get("rport")
        return int(value) if value else None

    @property
    def has_rport(self) -> bool:
        return "rport" in self.params

    def __str__(self) -> str:
        return f"SIP/2.0/{self.transport} {_format_hostport(self.host, self.port)}{_format_params(self.params)}"


@dataclass(frozen=True)
class CSeq:
    number: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        parts = text.split()
        if len(parts) != 2:
            raise ValueError(f"invalid CSeq {text!r}")
        number, method = parts
        # RFC 3261 §8.1.1.5: 32-bit unsigned, i.e. below 2**31 for the initial value, at most 2**32-1.
        if not number.isascii() or not number.isdigit() or len(number) > 10 or int(number) >= 2**32:
            raise ValueError(f"invalid CSeq number {number!r}")
        if not is_token(method):
            raise ValueError(f"invalid CSeq method {method!r}")
        return cls(int(number), method)

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


class _Message:
    """Header accessors and serialisation shared by requests and responses."""

    __slots__ = ()  # the subclasses' slots then hold everything: no __dict__ per message

    headers: Headers
    body: bytes

    def _start_line(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(v) for value in self.headers.get_all("Via") for v in split_values(value)]

    @property
    def via(self) -> Via:
        """Top Via."""
        value = self.headers.get("Via")
        if value is None:
            raise ValueError("no Via")
        return Via.parse(split_values(value)[0])

    @property
    def branch(self) -> str | None:
        """``via.branch``, without building the Via when it takes the fast path (every response
        is matched to its transaction by it)."""
        value = self.headers.get("Via")
        plain = _PLAIN_VIA_RE.fullmatch(value) if value is not None else None
        if plain is not None:
            return _plain_params(plain.group(4)).get("branch")
        return self.via.branch

    @property
    def cseq(self) -> CSeq:
        return CSeq.parse(self.headers.get("CSeq") or "")

    @property
    def call_id(self) -> str:
        return self.headers.get("Call-ID") or ""

    @property
    def from_(self) -> NameAddr:
        return NameAddr.parse(self.headers.get("From") or "")

    @property
    def to(self) -> NameAddr:
        return NameAddr.parse(self.headers.get("To") or "")

    @property
    def contacts(self) -> list[NameAddr]:
        values = [v for value in self.headers.get_all("Contact") for v in split_values(value)]
        return [NameAddr.parse(v) for v in values if v != "*"]

    def to_bytes(self) -> bytes:
        """Wire form; Content-Length always written and always right."""
        lines = [self._start_line()]
        length = f"Content-Length: {len(self.body)}"
        for name, value in self.headers:
            if name != "Content-Length":
                lines.append(f"{name}: {value}")
            elif length:
                lines.append(length)  # where it was, so that a parsed message round-trips
                length = ""
        if length:
            lines.append(length)
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body

    def __bytes__(self) -> bytes:
        return self.to_bytes()


@dataclass(slots=True)
class Request(_Message):
    method: str = ""
    uri: str = ""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} {SIP_VERSION}"


@dataclass(slots=True)
class Response(_Message):
    status: int = 0
    reason: str = ""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def _start_line(self) -> str:
        return f"{SIP_VERSION} {self.status} {self.reason}"

    @property
    def is_provisional(self) -> bool:
        return 100 <= self.status < 200

    @property
    def is_final(self) -> bool:
        return self.status >= 200


REASON_PHRASES = {
    100: "Trying",
    180: "Ringing",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    415: "Unsupported Media Type",
    420: "Bad Extension",
    423: "Interval Too Brief",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    489: "Bad Event",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    603: "Decline",
}


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """A response to ``request`` per RFC 3261 §8.2.6: Via, From, Call-ID, CSeq copied; To tagged."""
    if not 100 <= status <= 699:
        raise ValueError(f"invalid status {status}")
    out = Headers()
    for value in request.headers.get_all("Via"):
        out.add("Via", value)
    for name in ("From", "To", "Call-ID", "CSeq"):
        value = request.headers.get(name)
        if value is not None:
            out.add(name, value)
    to_value = request.headers.get("To")
    if to_tag and status > 100 and to_value is not None and NameAddr.parse(to_value).tag is None:
        out.set("To", f"{to_value};tag={to_tag}")
    for name, value in headers:
        out.add(name, value)
    return Response(
        status=status,
        reason=reason or REASON_PHRASES.get(status, ""),
        headers=out,
        body=body,
    )


Message = Request | Response
