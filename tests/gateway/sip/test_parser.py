import pytest

from gateway.sip.message import CSeq, Headers, NameAddr, Request, Response, SipUri, Via, make_response
from gateway.sip.parser import MAX_HEADER_LINES, MAX_MESSAGE_BYTES, ParseError, StreamFramer, parse_message

from .corpus import (
    CISCO_REGISTER,
    COMPACT_NOTIFY,
    FOLDED,
    INVITE_WITH_SDP,
    INVITE_WITH_SDP_BODY,
    MULTI_VIA_200,
    NOTIFY,
    OK_200,
    POLY_REGISTER,
    SNOM_REGISTER,
    UNAUTHORIZED_401,
    VALID,
    YEALINK_REGISTER,
)


@pytest.mark.parametrize("raw", VALID.values(), ids=VALID.keys())
def test_it_parses_what_real_devices_send_and_serialises_it_back_the_same(raw):
    message = parse_message(raw)
    again = parse_message(message.to_bytes())
    assert again == message


@pytest.mark.parametrize(
    ("raw", "user_agent"),
    [
        (YEALINK_REGISTER, "Yealink SIP-T54W 96.86.0.100"),
        (POLY_REGISTER, "PolycomVVX-VVX_450-UA/6.4.3.5018"),
        (CISCO_REGISTER, "Cisco/CP-8851-3PCC-12.0.1"),
        (SNOM_REGISTER, "snom D735/10.1.54.13"),
    ],
    ids=["yealink", "poly", "cisco", "snom"],
)
def test_it_reads_a_register_from_each_vendor(raw, user_agent):
    message = parse_message(raw)
    assert isinstance(message, Request)
    assert message.method == "REGISTER"
    assert message.uri == "sip:sip.example.com"
    assert message.headers.get("user-agent") == user_agent
    assert message.cseq.method == "REGISTER"
    assert message.via.branch.startswith("z9hG4bK")
    assert message.from_.tag
    [contact] = message.contacts
    assert contact.sip_uri.user == message.from_.sip_uri.user


def test_it_reads_the_poly_contact_with_quoted_parameters_holding_commas_and_brackets():
    [contact] = parse_message(POLY_REGISTER).contacts
    assert contact.sip_uri.transport == "tcp"
    assert contact.params["+sip.instance"] == '"<urn:uuid:00000000-0000-1000-8000-0004F2ABCDEF>"'
    assert contact.params["methods"].startswith('"INVITE,ACK')
    assert contact.params["reg-id"] == "1"


def test_it_reads_the_snom_contact_with_flag_parameters_and_uri_parameters():
    [contact] = parse_message(SNOM_REGISTER).contacts
    assert contact.params["audio"] is None
    assert contact.sip_uri.params == {"line": "kvnr7kqs"}
    assert contact.sip_uri.port == 2048


def test_it_reads_a_401_challenge():
    response = parse_message(UNAUTHORIZED_401)
    assert isinstance(response, Response)
    assert (response.status, response.reason) == (401, "Unauthorized")
    assert response.headers.get("WWW-Authenticate").startswith('Digest algorithm=MD5, realm="sip.example.com"')
    assert response.via.received == "203.0.113.7"
    assert response.via.rport == 40112
    assert response.to.tag == "as1a2b3c4d"


def test_it_reads_a_200_ok_to_our_notify():
    response = parse_message(OK_200)
    assert response.status == 200
    assert response.cseq == CSeq(1, "NOTIFY")
    assert response.via.branch == "z9hG4bK5f1e2d3c4b5a6978"


def test_it_expands_compact_header_names():
    message = parse_message(COMPACT_NOTIFY)
    names = [name for name, _ in message.headers]
    assert names == [
        "Via",
        "Max-Forwards",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Event",
        "Content-Length",
    ]
    assert message.headers.get("o") == "check-sync"
    assert message.call_id == "compact-1@198.51.100.10"
    assert b"\r\nEvent: check-sync\r\n" in message.to_bytes()


def test_it_unfolds_continuation_lines():
    message = parse_message(FOLDED)
    assert message.via.branch == "z9hG4bKfolded1"
    assert message.from_.display_name == '"Folded Name"'
    assert message.headers.get("Subject") == "first part, second part"


def test_it_reads_every_via_whether_comma_separated_or_on_separate_lines():
    vias = parse_message(MULTI_VIA_200).vias
    assert [(via.transport, via.host, via.port, via.branch) for via in vias] == [
        ("UDP", "198.51.100.10", 5060, "z9hG4bKtop"),
        ("TCP", "10.1.1.1", 5060, "z9hG4bKmiddle"),
        ("UDP", "[2001:db8::1]", 5070, "z9hG4bKbottom"),
    ]
    assert vias[2].received == "2001:db8::1"


def test_it_unfolds_a_blank_continuation_line_without_leaving_whitespace():
    # Found by the fuzzer: "first part, " would not survive a write and a read.
    raw = FOLDED.replace(b"   second part", b" ")
    message = parse_message(raw)
    assert message.headers.get("Subject") == "first part,"
    assert parse_message(message.to_bytes()) == message


def test_it_keeps_the_body_that_content_length_announces():
    message = parse_message(INVITE_WITH_SDP)
    assert message.body == INVITE_WITH_SDP_BODY.encode()
    assert message.headers.get("Content-Type") == "application/sdp"


def test_it_discards_datagram_bytes_past_the_content_length():
    message = parse_message(INVITE_WITH_SDP + b"trailing junk")
    assert message.body == INVITE_WITH_SDP_BODY.encode()


def test_it_takes_the_rest_of_a_datagram_as_body_when_content_length_is_absent():
    raw = NOTIFY.replace(b"Content-Length: 0\r\n", b"") + b"hello"
    assert parse_message(raw).body == b"hello"


def test_it_accepts_bare_lf_line_endings_and_leading_crlf():
    assert parse_message(b"\r\n\r\n" + NOTIFY.replace(b"\r\n", b"\n")) == parse_message(NOTIFY)


def test_it_serialises_with_a_correct_content_length_whatever_the_header_said():
    message = parse_message(NOTIFY)
    message.body = b"0123456789"
    wire = message.to_bytes()
    assert wire.count(b"Content-Length") == 1
    assert wire.endswith(b"Content-Length: 10\r\n\r\n0123456789")


def crlf_notify(**changes: str | None) -> bytes:
    """The NOTIFY with some header lines replaced (value) or removed (None)."""
    lines = NOTIFY.decode().split("\r\n")
    out = []
    for line in lines:
        name = line.split(":", 1)[0]
        if name in changes:
            if changes[name] is not None:
                out.append(f"{name}: {changes[name]}")
        else:
            out.append(line)
    return "\r\n".join(out).encode()


BAD = {
    "empty": (b"", "empty message"),
    "only-crlf": (b"\r\n\r\n", "empty message"),
    "not-bytes": ("NOTIFY sip:a@b SIP/2.0\r\n\r\n", "expected bytes"),
    "no-end-of-headers": (NOTIFY[:-2], "no empty line after the headers"),
    "request-line-two-parts": (NOTIFY.replace(b" SIP/2.0\r\n", b"\r\n", 1), "invalid request line"),
    "request-line-extra-space": (NOTIFY.replace(b"NOTIFY sip", b"NOTIFY  sip", 1), "invalid request line"),
    "method-not-token": (NOTIFY.replace(b"NOTIFY sip", b'NOT"IFY sip', 1), "invalid method"),
    "request-uri-garbage": (NOTIFY.replace(b"sip:805E0C123456@192.168.1.23:5062 ", b"<nope> ", 1), "Request-URI"),
    "request-uri-bad-port": (NOTIFY.replace(b"5062 SIP", b"99999 SIP", 1), "Request-URI"),
    "wrong-version": (NOTIFY.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1), "unsupported version"),
    "status-two-digits": (OK_200.replace(b"200 OK", b"20 OK", 1), "invalid status code"),
    "status-out-of-range": (OK_200.replace(b"200 OK", b"700 OK", 1), "invalid status code"),
    "status-not-digits": (OK_200.replace(b"200 OK", b"2x0 OK", 1), "invalid status code"),
    "response-version": (OK_200.replace(b"SIP/2.0 200", b"SIP/1.0 200", 1), "unsupported version"),
    "missing-via": (crlf_notify(Via=None), "missing mandatory header Via"),
    "missing-from": (crlf_notify(From=None), "missing mandatory header From"),
    "missing-to": (crlf_notify(To=None), "missing mandatory header To"),
    "missing-call-id": (crlf_notify(**{"Call-ID": None}), "missing mandatory header Call-ID"),
    "missing-cseq": (crlf_notify(CSeq=None), "missing mandatory header CSeq"),
    "missing-max-forwards-in-request": (crlf_notify(**{"Max-Forwards": None}), "missing mandatory header Max-Forwards"),
    "empty-call-id": (crlf_notify(**{"Call-ID": ""}), "missing mandatory header Call-ID"),
    "call-id-with-space": (crlf_notify(**{"Call-ID": "a b"}), "invalid Call-ID"),
    "cseq-not-number": (crlf_notify(CSeq="one NOTIFY"), "invalid CSeq number"),
    "cseq-too-big": (crlf_notify(CSeq="4294967296 NOTIFY"), "invalid CSeq number"),
    "cseq-no-method": (crlf_notify(CSeq="1"), "invalid CSeq"),
    "cseq-other-method": (crlf_notify(CSeq="1 INVITE"), "does not match request method"),
    "max-forwards-too-big": (crlf_notify(**{"Max-Forwards": "256"}), "invalid Max-Forwards"),
    "max-forwards-negative": (crlf_notify(**{"Max-Forwards": "-1"}), "invalid Max-Forwards"),
    "via-no-host": (crlf_notify(Via="SIP/2.0/UDP"), "invalid Via"),
    "via-bad-port": (crlf_notify(Via="SIP/2.0/UDP 10.0.0.1:70000;branch=z9hG4bKx"), "port out of range"),
    "via-bad-rport": (crlf_notify(Via="SIP/2.0/UDP 10.0.0.1;rport=abc;branch=z9hG4bKx"), "invalid rport"),
    "via-empty-element": (crlf_notify(Via="SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx,,"), "empty element"),
    "from-no-uri": (crlf_notify(From="Alice"), "invalid URI"),
    "from-unclosed-bracket": (crlf_notify(From="<sip:a@b.c;tag=1"), "unterminated"),
    "to-unclosed-quote": (crlf_notify(To='"Bob <sip:b@c.d>'), "unterminated"),
    "contact-bad-host": (crlf_notify(Contact="<sip:portal@bad_host>"), "invalid host"),
    "two-from": (NOTIFY.replace(b"To:", b"From: <sip:x@y.z>;tag=2\r\nTo:", 1), "more than one From"),
    "two-call-id": (NOTIFY.replace(b"CSeq:", b"Call-ID: other\r\nCSeq:", 1), "more than one Call-ID"),
    "content-length-negative": (crlf_notify(**{"Content-Length": "-1"}), "invalid Content-Length"),
    "content-length-text": (crlf_notify(**{"Content-Length": "zero"}), "invalid Content-Length"),
    "content-length-huge": (crlf_notify(**{"Content-Length": "99999999999"}), "invalid Content-Length"),
    "content-length-conflict": (
        NOTIFY.replace(b"Content-Length: 0", b"Content-Length: 0\r\nl: 3", 1) + b"abc",
        "conflicting Content-Length",
    ),
    "short-body": (crlf_notify(**{"Content-Length": "10"}) + b"12345", "body shorter (5) than Content-Length (10)"),
    "header-without-colon": (NOTIFY.replace(b"Event: ", b"Event ", 1), "invalid header line"),
    "header-name-with-space": (NOTIFY.replace(b"Event:", b"Ev ent:", 1), "invalid header line"),
    "empty-header-name": (NOTIFY.replace(b"Event:", b":", 1), "invalid header line"),
    "continuation-first": (NOTIFY.replace(b"\r\nVia:", b"\r\n Via:", 1), "continuation line before the first header"),
    "nul-byte": (NOTIFY.replace(b"check-sync", b"check\x00sync", 1), "control character on line"),
    "lone-cr": (NOTIFY.replace(b"check-sync", b"check\rsync", 1), "control character on line"),
    "not-utf8": (NOTIFY.replace(b"check-sync", b"check\xffsync", 1), "not UTF-8"),
    "too-large": (NOTIFY + b"x" * MAX_MESSAGE_BYTES, "larger than"),
    "too-many-headers": (
        NOTIFY.replace(b"Content-Length", b"X-Filler: 1\r\n" * MAX_HEADER_LINES + b"Content-Length", 1),
        "header lines",
    ),
    "line-too-long": (NOTIFY.replace(b"check-sync", b"check-sync" + b"a" * 9000, 1), "longer than"),
    "binary-garbage": (bytes(range(256)), "no empty line"),
    "http-request": (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "unsupported version 'HTTP/1.1'"),
}


@pytest.mark.parametrize(("raw", "error"), BAD.values(), ids=BAD.keys())
def test_it_rejects_malformed_input_with_a_parse_error_saying_why(raw, error):
    with pytest.raises(ParseError) as caught:
        parse_message(raw)
    assert error in str(caught.value)


def test_it_frames_messages_from_a_tcp_stream_in_any_chunking_ignoring_keepalives():
    stream = b"\r\n\r\n" + NOTIFY + b"\r\n" + INVITE_WITH_SDP + b"\r\n\r\n" + OK_200
    expected = [parse_message(NOTIFY), parse_message(INVITE_WITH_SDP), parse_message(OK_200)]
    for size in (1, 7, 100, len(stream)):
        framer = StreamFramer()
        got = []
        for i in range(0, len(stream), size):
            got.extend(framer.feed(stream[i : i + size]))
        assert got == expected
        assert framer.buffered == 0


def test_it_requires_content_length_on_a_stream():
    with pytest.raises(ParseError, match="Content-Length is mandatory"):
        StreamFramer().feed(crlf_notify(**{"Content-Length": None}))


def test_it_gives_up_on_a_stream_whose_headers_never_end():
    framer = StreamFramer()
    with pytest.raises(ParseError, match="headers too large"):
        for _ in range(MAX_MESSAGE_BYTES // 1000 + 2):
            framer.feed(b"X-Junk: " + b"a" * 990 + b"\r\n")


def test_it_waits_for_the_whole_body_on_a_stream():
    framer = StreamFramer()
    assert framer.feed(INVITE_WITH_SDP[:-5]) == []
    assert framer.feed(INVITE_WITH_SDP[-5:]) == [parse_message(INVITE_WITH_SDP)]


class TestHeaderValues:
    def test_it_treats_header_names_case_insensitively_and_keeps_order(self):
        headers = Headers([("via", "a"), ("X-Custom", "1"), ("VIA", "b"), ("call-id", "c")])
        assert headers.get_all("Via") == ["a", "b"]
        assert headers.get("v") == "a"
        assert headers.get("CALL-ID") == headers.get("i") == "c"
        assert [name for name, _ in headers] == ["Via", "X-Custom", "Via", "Call-ID"]
        headers.set("via", "z")
        assert headers.items() == [("Via", "z"), ("X-Custom", "1"), ("Call-ID", "c")]

    def test_it_refuses_header_values_that_would_inject_lines(self):
        with pytest.raises(ValueError, match="control character"):
            Headers([("Event", "check-sync\r\nX-Evil: 1")])

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("sip:1001@10.0.0.5", SipUri(host="10.0.0.5", user="1001")),
            ("sip:1001@10.0.0.5:5062;transport=TCP", SipUri("10.0.0.5", "1001", 5062, params={"transport": "TCP"})),
            ("SIPS:edge.example.com", SipUri("edge.example.com", scheme="sips")),
            ("sip:a:secret@[2001:db8::2]:5070;lr", SipUri("[2001:db8::2]", "a:secret", 5070, params={"lr": None})),
            ("sip:*55*123456@h.example?subject=x", SipUri("h.example", "*55*123456", headers="subject=x")),
        ],
    )
    def test_it_parses_sip_uris(self, text, expected):
        assert SipUri.parse(text) == expected

    @pytest.mark.parametrize(
        "text",
        ["tel:+15551234", "sip:", "sip:@host", "sip:user@", "sip:u@h:0", "sip:u@h:abc", "sip:u@ho st", "sip:u@[::1"],
    )
    def test_it_rejects_bad_sip_uris(self, text):
        with pytest.raises(ValueError):
            SipUri.parse(text)

    def test_it_reports_the_transport_a_uri_asks_for(self):
        assert SipUri.parse("sip:a@b").transport == "udp"
        assert SipUri.parse("sip:a@b;transport=TCP").transport == "tcp"
        assert SipUri.parse("sips:a@b").transport == "tls"

    def test_it_parses_name_addr_forms(self):
        assert NameAddr.parse('"Front desk" <sip:1001@h>;tag=9') == NameAddr("sip:1001@h", '"Front desk"', {"tag": "9"})
        assert NameAddr.parse("Bob <sip:b@h;transport=tcp>").sip_uri.transport == "tcp"
        # Without brackets the parameters belong to the header, not the URI (§20.10).
        bare = NameAddr.parse("sip:1001@h;tag=abc")
        assert (bare.uri, bare.tag) == ("sip:1001@h", "abc")

    def test_it_parses_and_prints_via(self):
        via = Via.parse("SIP/2.0/udp 10.0.0.1:5062;branch=z9hG4bKx;rport")
        assert (via.transport, via.host, via.port, via.branch, via.has_rport, via.rport) == (
            "UDP",
            "10.0.0.1",
            5062,
            "z9hG4bKx",
            True,
            None,
        )
        assert str(via) == "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKx;rport"

    def test_it_builds_a_response_that_copies_the_transaction_headers(self):
        request = parse_message(NOTIFY)
        response = make_response(request, 489, to_tag="t1", headers=[("Allow-Events", "talk")])
        assert response.reason == "Bad Event"
        assert response.headers.get_all("Via") == request.headers.get_all("Via")
        assert response.to.tag == "t1"
        assert response.cseq == request.cseq and response.call_id == request.call_id
        assert parse_message(response.to_bytes()).to_bytes() == response.to_bytes()


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp", True),
        (
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
            True,
        ),
        (
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
            True,
        ),
        ("sip:alice@atlanta.com?subject=project%20x", "sip:alice@atlanta.com?subject=project%20y", False),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5", True),
        ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;newparam=5", True),
        ("sip:alice@atlanta.com", "sip:alice@atlanta.com:5060", False),
        ("sip:ALICE@AtlantA.com", "sip:alice@atlanta.com", False),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp", False),
        ("sip:bob@biloxi.com;user=phone", "sip:bob@biloxi.com", False),
        ("sips:bob@biloxi.com", "sip:bob@biloxi.com", False),
    ],
)
def test_uris_compare_as_rfc_3261_19_1_4_says(a, b, same):
    """Its own examples of equal and unequal URIs."""
    assert SipUri.parse(a).same_as(SipUri.parse(b)) is same
    assert SipUri.parse(b).same_as(SipUri.parse(a)) is same
