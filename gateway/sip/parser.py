"""Strict SIP wire parser (RFC 3261 §7) and a framer for stream transports (§18.3).

``parse_message`` raises only ``ParseError``, whatever the input: phones, scanners and broken
NATs send anything to a SIP port, and one bad datagram must never take the endpoint down.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .message import (
    SIP_VERSION,
    CSeq,
    Headers,
    Message,
    NameAddr,
    Request,
    Response,
    Via,
    canonical_name,
    check_request_uri,
    is_token,
    plain_name_addr,
    plain_via,
    split_values,
)

MAX_MESSAGE_BYTES = 65_535  # the largest UDP payload; streams get the same bound per message
MAX_HEADER_LINES = 128
MAX_LINE_BYTES = 8_192

# Present at most once: a second value makes the message ambiguous (§20).
# (Repeated Content-Length is tolerated when every copy agrees.)
_SINGLE = ("From", "To", "Call-ID", "CSeq", "Max-Forwards")
_MANDATORY = (
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
)  # §8.1.1; Max-Forwards too in requests

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_LINE_SPLIT = re.compile(r"\r?\n")
_BAD_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # anything but HT among controls
# The same but LF, for a whole head once its CR LFs are LFs: then only the line ends are left.
_BAD_CHARS_BUT_LF = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# name ":" value of one header line, the name a token (RFC 3261 §25.1).
_field_line = re.compile(r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*:(.*)").fullmatch
_CALL_ID_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+(?:@[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+)?")


class ParseError(ValueError):
    """The bytes are not one well-formed SIP message."""


@dataclass
class _Head:
    start_line: str
    headers: Headers
    content_length: int | None


def parse_message(data: bytes) -> Message:
    """Parse one datagram (UDP rules: a missing Content-Length means "the rest")."""
    try:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ParseError(f"expected bytes, got {type(data).__name__}")
        data = bytes(data)
        if len(data) > MAX_MESSAGE_BYTES:
            raise ParseError(f"message larger than {MAX_MESSAGE_BYTES} bytes")
        data = data.lstrip(b"\r\n")  # §7.5: CRLFs before the start line are ignored
        if not data:
            raise ParseError("empty message")
        match = _HEADER_END.search(data)
        if match is None:
            raise ParseError("no empty line after the headers")
        head = _parse_head(data[: match.start()])
        body = data[match.end() :]
        if head.content_length is not None:
            if head.content_length > len(body):
                raise ParseError(f"body shorter ({len(body)}) than Content-Length ({head.content_length})")
            body = body[: head.content_length]  # §18.3: bytes past the body are discarded
        return _build(head, body)
    except ParseError:
        raise
    except Exception as exc:
        raise ParseError(f"malformed message: {exc}") from exc


class StreamFramer:
    """Cuts a TCP byte stream into messages; Content-Length is mandatory there (§18.3).

    After ``feed`` raised ParseError the stream cannot be resynchronised: close the connection.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._head: _Head | None = None
        self._head_len = 0

    def feed(self, data: bytes) -> list[Message]:
        try:
            return self._feed(data)
        except ParseError:
            raise
        except Exception as exc:
            raise ParseError(f"malformed stream: {exc}") from exc

    def _feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        messages: list[Message] = []
        while True:
            if self._head is None:
                # Keepalives (RFC 5626 §3.5.1: CRLFCRLF ping, CRLF pong) between messages.
                stripped = len(self._buffer) - len(self._buffer.lstrip(b"\r\n"))
                del self._buffer[:stripped]
                if not self._buffer:
                    break
                match = _HEADER_END.search(self._buffer)
                if match is None:
                    if len(self._buffer) > MAX_MESSAGE_BYTES:
                        raise ParseError("headers too large")
                    break
                head = _parse_head(bytes(self._buffer[: match.start()]))
                if head.content_length is None:
                    raise ParseError("Content-Length is mandatory on stream transports")
                if match.end() + head.content_length > MAX_MESSAGE_BYTES:
                    raise ParseError(f"message larger than {MAX_MESSAGE_BYTES} bytes")
                self._head, self._head_len = head, match.end()
            total = self._head_len + (self._head.content_length or 0)
            if len(self._buffer) < total:
                break
            body = bytes(self._buffer[self._head_len : total])
            del self._buffer[:total]
            head, self._head = self._head, None
            messages.append(_build(head, body))
        return messages

    @property
    def buffered(self) -> int:
        return len(self._buffer)


def _parse_head(raw: bytes) -> _Head:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"headers are not UTF-8: {exc}") from exc
    lines = _LINE_SPLIT.split(text)
    if len(lines) - 1 > MAX_HEADER_LINES:
        raise ParseError(f"more than {MAX_HEADER_LINES} header lines")
    # One scan of the whole head; the line-by-line walk only runs to say which line is bad.
    if max(map(len, lines)) > MAX_LINE_BYTES or _BAD_CHARS_BUT_LF.search(text.replace("\r\n", "\n")):
        _raise_bad_line(lines)

    matches = list(map(_field_line, lines[1:]))
    if None in matches:  # folded lines, or a bad one
        items = _folded_fields(lines[1:])
    else:
        items = [(canonical_name(match[1]), match[2].strip(" \t")) for match in matches]
    # Names are tokens and values free of control characters (checked above): no second check.
    headers = Headers.trusted(items)

    content_length: int | None = None
    values = headers.get_all("Content-Length")
    if values:
        numbers = set()
        for value in values:
            if not value.isascii() or not value.isdigit() or len(value) > 9:
                raise ParseError(f"invalid Content-Length {value!r}")
            numbers.add(int(value))
        if len(numbers) > 1:
            raise ParseError("conflicting Content-Length headers")
        content_length = numbers.pop()
    return _Head(start_line=lines[0], headers=headers, content_length=content_length)


def _folded_fields(lines: list[str]) -> list[tuple[str, str]]:
    fields: list[list[str]] = []
    for line in lines:
        field = _field_line(line)
        if field is not None:
            fields.append([field[1], field[2].strip(" \t")])
            continue
        if line[:1] in (" ", "\t"):
            # §7.3.1 folding: a continuation line joins the previous field with one space.
            if not fields:
                raise ParseError("continuation line before the first header")
            fields[-1][1] = f"{fields[-1][1]} {line.strip()}".strip()
            continue
        raise ParseError(f"invalid header line {line[:80]!r}")
    return [(canonical_name(name), value) for name, value in fields]


def _raise_bad_line(lines: list[str]) -> None:
    for number, line in enumerate(lines, start=1):
        if len(line) > MAX_LINE_BYTES:
            raise ParseError(f"line {number} longer than {MAX_LINE_BYTES} characters")
        if _BAD_CHARS.search(line):
            raise ParseError(f"control character on line {number}")


def _build(head: _Head, body: bytes) -> Message:
    message: Message
    start = head.start_line
    if start.upper().startswith("SIP/"):
        message = _status_line(start, head.headers, body)
    else:
        message = _request_line(start, head.headers, body)
    _check_headers(message)
    return message


def _request_line(line: str, headers: Headers, body: bytes) -> Request:
    parts = line.split(" ")
    if len(parts) != 3:
        raise ParseError(f"invalid request line {line[:80]!r}")
    method, uri, version = parts
    if not is_token(method):
        raise ParseError(f"invalid method {method[:40]!r}")
    if version.upper() != SIP_VERSION:
        raise ParseError(f"unsupported version {version[:20]!r}")
    try:
        check_request_uri(uri)
    except ValueError as exc:
        raise ParseError(f"invalid Request-URI: {exc}") from exc
    return Request(method=method, uri=uri, headers=headers, body=body)


def _status_line(line: str, headers: Headers, body: bytes) -> Response:
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    if version.upper() != SIP_VERSION:
        raise ParseError(f"unsupported version {version[:20]!r}")
    if len(code) != 3 or not code.isascii() or not code.isdigit() or not 100 <= int(code) <= 699:
        raise ParseError(f"invalid status code {code[:20]!r}")
    return Response(status=int(code), reason=reason, headers=headers, body=body)


def _check_headers(message: Message) -> None:
    headers = message.headers
    items = headers.items()
    first = dict(reversed(items))  # each name's first value
    is_request = isinstance(message, Request)
    mandatory = _MANDATORY + (("Max-Forwards",) if is_request else ())
    for name in mandatory:
        value = first.get(name)
        if value is None or not value.strip():
            raise ParseError(f"missing mandatory header {name}")
    if len(first) < len(items):  # some name repeats
        names = [name for name, _ in items]
        for name in _SINGLE:
            if names.count(name) > 1:
                raise ParseError(f"more than one {name} header")
    # Checked, not kept: what matches a fast path's pattern is valid, the rest is parsed to say why not.
    try:
        vias = 0
        for name, value in items:
            if name == "Via":
                vias += 1 if plain_via(value) else len([Via.parse(v) for v in split_values(value)])
        for name in ("From", "To"):
            if not plain_name_addr(first[name]):
                NameAddr.parse(first[name])
        cseq = CSeq.parse(first["CSeq"])
        if "Contact" in first:
            for value in headers.get_all("Contact"):
                if value.strip() != "*" and not plain_name_addr(value):
                    for item in split_values(value):
                        NameAddr.parse(item)
    except ValueError as exc:
        raise ParseError(str(exc)) from exc
    if not vias:
        raise ParseError("missing mandatory header Via")
    call_id = first["Call-ID"]
    if not _CALL_ID_RE.fullmatch(call_id):
        raise ParseError(f"invalid Call-ID {call_id[:80]!r}")
    max_forwards = first.get("Max-Forwards")
    if max_forwards is not None and not (
        max_forwards.isascii() and max_forwards.isdigit() and len(max_forwards) <= 3 and int(max_forwards) <= 255
    ):
        raise ParseError(f"invalid Max-Forwards {max_forwards[:20]!r}")
    if is_request and cseq.method != message.method:
        raise ParseError(f"CSeq method {cseq.method} does not match request method {message.method}")


__all__ = [
    "MAX_HEADER_LINES",
    "MAX_LINE_BYTES",
    "MAX_MESSAGE_BYTES",
    "ParseError",
    "StreamFramer",
    "parse_message",
]
