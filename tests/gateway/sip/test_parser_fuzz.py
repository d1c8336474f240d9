"""Whatever arrives on the SIP port, the parser answers with a message or a ParseError."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.sip.message import NameAddr, Request, Response, SipUri, Via
from gateway.sip.parser import ParseError, StreamFramer, parse_message

from .corpus import VALID

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEEDS = list(VALID.values())


def parse_or_parse_error(data: bytes) -> None:
    try:
        message = parse_message(data)
    except ParseError:
        return
    assert isinstance(message, Request | Response)
    # Whatever we accept, we can also write out and read back identically.
    assert parse_message(message.to_bytes()).to_bytes() == message.to_bytes()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "delete", "insert", "truncate", "duplicate", "splice"]))
        if kind == "flip":
            data[at] = draw(st.integers(0, 255))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif kind == "insert":
            token = draw(st.sampled_from([b"\r\n", b"\n", b" ", b"\t", b":", b";", b",", b"<", b">", b'"', b"\x00"]))
            data[at:at] = token * draw(st.integers(1, 3))
        elif kind == "truncate":
            del data[at:]
        elif kind == "duplicate":
            end = min(len(data), at + draw(st.integers(1, 80)))
            data[at:at] = data[at:end]
        else:
            data[at:at] = draw(st.binary(max_size=30))
    return bytes(data)


SIP_CHARS = [*'abcXYZ019:;,.<>@"\\=[]?&%+*!~ \t-_/', "\r\n ", "\r\n", "sip:", "z9hG4bK", "é"]


@st.composite
def valid_with_odd_header(draw: st.DrawFn) -> bytes:
    """A real message with one header value replaced by SIP-ish text: exercises value parsers."""
    lines = draw(st.sampled_from([seed for seed in SEEDS if b"\r\n" in seed])).split(b"\r\n")
    headers = [i for i, line in enumerate(lines[1 : lines.index(b"")], start=1) if b":" in line]
    index = draw(st.sampled_from(headers))
    name = lines[index].split(b":", 1)[0]
    value = "".join(draw(st.lists(st.sampled_from(SIP_CHARS), max_size=40)))
    lines[index] = name + b": " + value.encode()
    return b"\r\n".join(lines)


@FUZZ
@given(valid_with_odd_header())
def test_it_raises_only_parse_error_on_odd_header_values(data):
    parse_or_parse_error(data)


@FUZZ
@given(st.binary(max_size=2000))
def test_it_raises_only_parse_error_on_arbitrary_bytes(data):
    parse_or_parse_error(data)


@FUZZ
@given(mutated())
def test_it_raises_only_parse_error_on_mutated_real_messages(data):
    parse_or_parse_error(data)


@FUZZ
@given(
    st.text(
        alphabet=st.sampled_from(list('abcINVTEOFYRGS:;,<>@"= \t\r\n/0123456789.-z9hG4bK')),
        max_size=400,
    )
)
def test_it_raises_only_parse_error_on_sip_looking_text(text):
    parse_or_parse_error(("NOTIFY sip:a@b SIP/2.0\r\n" + text).encode())
    parse_or_parse_error(("SIP/2.0 200 OK\r\n" + text).encode())


@FUZZ
@given(st.lists(st.sampled_from(SEEDS), min_size=1, max_size=4), st.lists(st.integers(1, 300), max_size=20))
def test_it_frames_a_stream_the_same_however_it_is_cut(messages, cuts):
    stream = b"".join(b"\r\n\r\n" + m for m in messages)
    framer = StreamFramer()
    got, position = [], 0
    for size in [*cuts, len(stream)]:
        got.extend(framer.feed(stream[position : position + size]))
        position += size
    assert got == [parse_message(m) for m in messages]


@FUZZ
@given(mutated(), st.integers(1, 64))
def test_it_raises_only_parse_error_from_the_stream_framer(data, chunk):
    framer = StreamFramer()
    try:
        for i in range(0, len(data), chunk):
            framer.feed(data[i : i + chunk])
    except ParseError:
        pass


VALUE_SEEDS = {
    SipUri: ["sip:805E0C123456@192.168.1.23:5062;transport=udp", "sips:x@h.example.com:5061", "sip:h;lr", "sip:a:b@h"],
    NameAddr: ['"Bob" <sip:u@h.c:5060;transport=udp>;tag=1', "<sip:portal@127.0.0.1>;tag=ab", "Al Li <sip:a@b>"],
    Via: ["SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKf4;rport", "SIP/2.0/TCP h.example.com;received=1.2.3.4;rport=5060"],
}
VALUE_EDITS = [*'abcXYZ019:;,.<>@"\\=[]?&%+*!~ \t-_/', "sip:", "rport", "RPORT", ";rport=", "0", "65535", "60000", "é"]


@st.composite
def edited_value(draw: st.DrawFn, kind: type) -> str:
    text = list(draw(st.sampled_from(VALUE_SEEDS[kind])))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        if action == "insert" or not text:
            text[at:at] = [draw(st.sampled_from(VALUE_EDITS))]
        elif action == "delete":
            del text[min(at, len(text) - 1)]
        else:
            text[min(at, len(text) - 1)] = draw(st.sampled_from(VALUE_EDITS))
    return "".join(text)


def parsed_or_error(parse, text: str):
    try:
        return parse(text)
    except ValueError as exc:
        return f"ValueError: {exc}"


@FUZZ
@given(st.data())
@pytest.mark.parametrize("kind", [SipUri, NameAddr, Via], ids=lambda kind: kind.__name__)
def test_the_fast_paths_of_value_parsers_agree_with_the_general_ones(kind, data):
    text = data.draw(edited_value(kind))
    assert parsed_or_error(kind.parse, text) == parsed_or_error(kind.parse_general, text)
