"""Dialog state from an INVITE (RFC 3261 §12.1.1), the requests we send in it (§12.2.1.1), and
pager-mode MESSAGEs (RFC 3428)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.sip.dialog import Dialog
from gateway.sip.pager import MAX_UDP_MESSAGE_BYTES, build_text_message, send_text_message
from gateway.sip.parser import parse_message
from gateway.sip.transport import SipEndpoint

from .corpus import INVITE_WITH_SDP
from .peers import answer, async_test, udp_phone

VIA = "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKtest;rport"


def test_a_dialog_takes_its_state_from_the_invite_it_answers():
    dialog = Dialog.from_invite(parse_message(INVITE_WITH_SDP), local_tag="ours")
    assert dialog.id == ("1_3325513640@192.168.1.23", "ours", "3815277451")
    assert dialog.remote_target == "sip:805E0C123456@192.168.1.23:5062"
    assert dialog.remote_uri == "sip:805E0C123456@sip.example.com"
    assert dialog.local_uri == "sip:*55*123456@sip.example.com"
    assert dialog.remote_cseq == 1
    assert dialog.route_set == []
    assert 0 <= dialog.local_cseq < 2**31


@pytest.mark.parametrize(
    "contact",
    ["", "Contact: <tel:+14255550100>\r\n", "Contact: <sip:a@10.0.0.1>, <sip:b@10.0.0.2>\r\n"],
    ids=["none", "tel", "two"],
)
def test_an_invite_without_one_sip_contact_founds_no_dialog(contact):
    text = INVITE_WITH_SDP.replace(b"Contact: <sip:805E0C123456@192.168.1.23:5062>\r\n", contact.encode())
    with pytest.raises(ValueError):
        Dialog.from_invite(parse_message(text), local_tag="ours")


def test_a_strict_router_takes_the_bye_in_its_request_uri_and_the_target_goes_last():
    invite = INVITE_WITH_SDP.replace(
        b"CSeq: 1 INVITE", b"Record-Route: <sip:old.example.com>, <sip:p2.example.com;lr>\r\nCSeq: 1 INVITE"
    )
    dialog = Dialog.from_invite(parse_message(invite), local_tag="ours")
    bye = dialog.next_request("BYE", via=VIA)
    assert bye.uri == "sip:old.example.com"
    assert bye.headers.get_all("Route") == ["<sip:p2.example.com;lr>", "<sip:805E0C123456@192.168.1.23:5062>"]
    assert dialog.next_hop() == ("old.example.com", None, "udp")


token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=20)
host = st.from_regex(r"\A(10\.[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}|[a-z]{1,10}\.example\.com)\Z")
port = st.integers(1, 65535)


@settings(max_examples=200, deadline=None)
@given(
    call_id=token,
    local_tag=token,
    remote_tag=token,
    target=st.tuples(token, host, port),
    routes=st.lists(st.tuples(host, st.booleans()), max_size=3),
    start=st.integers(0, 2**31 - 10),
)
def test_requests_in_a_dialog_parse_back_with_its_tags_and_a_rising_cseq(
    call_id, local_tag, remote_tag, target, routes, start
):
    user, target_host, target_port = target
    route_set = [f"<sip:{h}{';lr' if lr else ''}>" for h, lr in routes]
    dialog = Dialog(
        call_id=call_id,
        local_tag=local_tag,
        remote_tag=remote_tag,
        local_uri="sip:*70*@edge.example.com",
        remote_uri=f"sip:{user}@edge.example.com",
        remote_target=f"sip:{user}@{target_host}:{target_port}",
        route_set=route_set,
        local_cseq=start,
    )
    numbers = []
    for method in ("BYE", "INFO"):
        request = parse_message(dialog.next_request(method, via=VIA).to_bytes())
        assert request.method == method
        assert request.call_id == call_id
        assert request.from_.tag == local_tag
        assert request.to.tag == remote_tag
        numbers.append(request.cseq.number)
        if not route_set or ";lr" in route_set[0]:
            assert request.uri == dialog.remote_target
            assert request.headers.get_all("Route") == route_set
        else:
            assert request.uri == route_set[0][1:-1]
    assert numbers == [start + 1, start + 2]


def test_a_text_message_is_plain_text_without_a_contact():
    message = build_text_message(
        "sip:805e0c123456@10.0.0.5:5062;transport=udp?subject=x",
        "Sign in at https://portal.example.com/pair/ with code BCDF-GHJK",
        via=VIA,
        local_host="edge.example.com",
        transport="udp",
        user_agent="test",
        aor="sip:805e0c123456@edge.example.com",
        from_display='Sign in "now"',
    )
    parsed = parse_message(message.to_bytes())
    assert parsed.method == "MESSAGE"
    assert parsed.uri == "sip:805e0c123456@10.0.0.5:5062;transport=udp"
    assert parsed.to.uri == "sip:805e0c123456@edge.example.com"
    assert parsed.from_.display_name == '"Sign in \\"now\\""'
    assert "Contact" not in parsed.headers
    assert parsed.headers.get("Content-Type") == "text/plain;charset=UTF-8"
    assert parsed.body.decode().endswith("code BCDF-GHJK")


def test_a_text_message_over_udp_stays_within_1300_bytes():
    long_text = "x" * MAX_UDP_MESSAGE_BYTES
    with pytest.raises(ValueError):
        build_text_message("sip:a@10.0.0.5", long_text, via=VIA, local_host="h", transport="udp", user_agent="t")
    tcp = build_text_message("sip:a@10.0.0.5", long_text, via=VIA, local_host="h", transport="tcp", user_agent="t")
    assert len(tcp.body) == MAX_UDP_MESSAGE_BYTES


@async_test
async def test_a_text_message_is_delivered_when_the_phone_accepts_it():
    phone = await udp_phone(answer(202, provisional=None))
    async with SipEndpoint() as endpoint:
        target = f"sip:805e0c123456@{phone.address[0]}:{phone.address[1]}"
        response = await send_text_message(endpoint, target, "hello", destination=phone.address)
    phone.close()
    assert response.status == 202
    (arrival,) = phone.arrivals
    assert arrival.request.body == b"hello"
