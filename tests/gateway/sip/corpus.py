# ruff: noqa: E501 - real phones send lines this long
"""Real-world message shapes (addresses and secrets replaced), as phones and servers send them."""


def crlf(text: str) -> bytes:
    """Test messages are written with \\n; the wire uses CRLF."""
    return text.replace("\n", "\r\n").encode()


YEALINK_REGISTER = crlf(
    """REGISTER sip:sip.example.com SIP/2.0
Via: SIP/2.0/UDP 192.168.1.23:5062;branch=z9hG4bK1438755487
From: "Reception" <sip:805E0C123456@sip.example.com>;tag=1734589125
To: "Reception" <sip:805E0C123456@sip.example.com>
Call-ID: 0_2911538367@192.168.1.23
CSeq: 1 REGISTER
Contact: <sip:805E0C123456@192.168.1.23:5062>
Max-Forwards: 70
User-Agent: Yealink SIP-T54W 96.86.0.100
Expires: 3600
Allow: INVITE, INFO, PRACK, ACK, BYE, CANCEL, OPTIONS, NOTIFY, REGISTER, SUBSCRIBE, REFER, PUBLISH, UPDATE, MESSAGE
Allow-Events: talk,hold,conference,refer,check-sync
Content-Length: 0

"""
)

POLY_REGISTER = crlf(
    """REGISTER sip:sip.example.com SIP/2.0
Via: SIP/2.0/TCP 10.0.0.51:5060;branch=z9hG4bK7e3b8a1c2F4A8B1C;rport
From: "1002" <sip:0004F2ABCDEF@sip.example.com>;tag=3D5C1C24-8EFB5E6E
To: <sip:0004F2ABCDEF@sip.example.com>
CSeq: 1 REGISTER
Call-ID: 4d6a7e2c-4b2e5f6a-1a2b3c4d
Contact: <sip:0004F2ABCDEF@10.0.0.51:5060;transport=tcp>;methods="INVITE,ACK,BYE,CANCEL,OPTIONS,INFO,MESSAGE,SUBSCRIBE,NOTIFY,PRACK,UPDATE,REFER";+sip.instance="<urn:uuid:00000000-0000-1000-8000-0004F2ABCDEF>";reg-id=1
User-Agent: PolycomVVX-VVX_450-UA/6.4.3.5018
Accept-Language: en
Supported: 100rel,replaces,outbound
Allow-Events: conference,talk,hold
Max-Forwards: 70
Expires: 3600
Content-Length: 0

"""
)

CISCO_REGISTER = crlf(
    """REGISTER sip:sip.example.com SIP/2.0
Via: SIP/2.0/UDP 192.168.10.44:5060;branch=z9hG4bK-4f7e2a1b
From: <sip:00562B123456@sip.example.com>;tag=6c1d7e3f2a9b0c1d
To: <sip:00562B123456@sip.example.com>
Call-ID: 8f2e7d6c-5b4a3f2e@192.168.10.44
CSeq: 46853 REGISTER
Max-Forwards: 70
Authorization: Digest username="00562B123456",realm="sip.example.com",nonce="4f2a",uri="sip:sip.example.com",algorithm=MD5,response="9b1e"
Contact: "1003" <sip:00562B123456@192.168.10.44:5060>;expires=3600
User-Agent: Cisco/CP-8851-3PCC-12.0.1
Content-Length: 0
Allow: ACK, BYE, CANCEL, INFO, INVITE, NOTIFY, OPTIONS, REFER, UPDATE
Supported: replaces

"""
)

SNOM_REGISTER = crlf(
    """REGISTER sip:sip.example.com SIP/2.0
Via: SIP/2.0/UDP 192.168.1.60:2048;branch=z9hG4bK-tjvz5jx4d1a1;rport
From: "Snom" <sip:000413A1B2C3@sip.example.com>;tag=ok4bgt1wbx
To: "Snom" <sip:000413A1B2C3@sip.example.com>
Call-ID: 3c26c3e6b5a1-8yl8bfr7cyqu
CSeq: 1 REGISTER
Max-Forwards: 70
Contact: <sip:000413A1B2C3@192.168.1.60:2048;line=kvnr7kqs>;reg-id=1;q=1.0;+sip.instance="<urn:uuid:0b2c0f58-1d2e-4f1a-9c3b-000413a1b2c3>";audio;mobility="fixed";duplex="full";description="snom D735";actor="principal";events="dialog";methods="INVITE,ACK,CANCEL,BYE,REFER,OPTIONS,NOTIFY,SUBSCRIBE,PRACK,MESSAGE,INFO,UPDATE"
User-Agent: snom D735/10.1.54.13
Supported: path, gruu, outbound
Allow-Events: dialog
Allow: INVITE, ACK, CANCEL, BYE, REFER, OPTIONS, NOTIFY, SUBSCRIBE, PRACK, MESSAGE, INFO, UPDATE
Expires: 3600
Content-Length: 0

"""
)

NOTIFY = crlf(
    """NOTIFY sip:805E0C123456@192.168.1.23:5062 SIP/2.0
Via: SIP/2.0/UDP 198.51.100.10:5060;branch=z9hG4bK5f1e2d3c4b5a6978;rport
Max-Forwards: 70
From: <sip:portal@198.51.100.10>;tag=a1b2c3d4e5f6
To: <sip:805E0C123456@192.168.1.23:5062>
Call-ID: 0f1e2d3c4b5a69788796a5b4c3d2e1f0
CSeq: 1 NOTIFY
Contact: <sip:portal@198.51.100.10:5060>
Event: check-sync;reboot=true
Subscription-State: terminated
User-Agent: SIPGatewayPortal/1.0
Content-Length: 0

"""
)

OK_200 = crlf(
    """SIP/2.0 200 OK
Via: SIP/2.0/UDP 198.51.100.10:5060;branch=z9hG4bK5f1e2d3c4b5a6978;rport=5060;received=198.51.100.10
From: <sip:portal@198.51.100.10>;tag=a1b2c3d4e5f6
To: <sip:805E0C123456@192.168.1.23:5062>;tag=2011425981
Call-ID: 0f1e2d3c4b5a69788796a5b4c3d2e1f0
CSeq: 1 NOTIFY
User-Agent: Yealink SIP-T54W 96.86.0.100
Content-Length: 0

"""
)

UNAUTHORIZED_401 = crlf(
    """SIP/2.0 401 Unauthorized
Via: SIP/2.0/UDP 192.168.1.23:5062;branch=z9hG4bK1438755487;received=203.0.113.7;rport=40112
From: "Reception" <sip:805E0C123456@sip.example.com>;tag=1734589125
To: "Reception" <sip:805E0C123456@sip.example.com>;tag=as1a2b3c4d
Call-ID: 0_2911538367@192.168.1.23
CSeq: 1 REGISTER
WWW-Authenticate: Digest algorithm=MD5, realm="sip.example.com", nonce="5f2a1b3c4d5e6f70", qop="auth"
Server: Asterisk PBX 18.20.0
Content-Length: 0

"""
)

# Compact forms (§7.3.3), as some phones send them to stay under the MTU.
COMPACT_NOTIFY = crlf(
    """NOTIFY sip:1001@192.168.1.23 SIP/2.0
v: SIP/2.0/UDP 198.51.100.10;branch=z9hG4bKcompact1
Max-Forwards: 70
f: <sip:portal@198.51.100.10>;tag=77
t: <sip:1001@192.168.1.23>
i: compact-1@198.51.100.10
CSeq: 7 NOTIFY
m: <sip:portal@198.51.100.10>
o: check-sync
l: 0

"""
)

FOLDED = crlf(
    """OPTIONS sip:edge.example.com SIP/2.0
Via: SIP/2.0/UDP 192.168.1.23:5062
 ;branch=z9hG4bKfolded1
Max-Forwards: 70
From: "Folded
\tName" <sip:1001@sip.example.com>;tag=1
To: <sip:edge.example.com>
Call-ID: folded-1
CSeq: 2 OPTIONS
Subject: first part,
   second part
Content-Length: 0

"""
)

MULTI_VIA_200 = crlf(
    """SIP/2.0 200 OK
Via: SIP/2.0/UDP 198.51.100.10:5060;branch=z9hG4bKtop;rport=5060, SIP/2.0/TCP 10.1.1.1:5060;branch=z9hG4bKmiddle
Via: SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bKbottom;received=2001:db8::1
From: <sip:portal@198.51.100.10>;tag=x
To: <sip:1001@192.168.1.23>;tag=y
Call-ID: multi-via
CSeq: 3 NOTIFY
Content-Length: 0

"""
)

INVITE_WITH_SDP_BODY = (
    "v=0\r\no=- 1 1 IN IP4 192.168.1.23\r\ns=-\r\nc=IN IP4 192.168.1.23\r\nt=0 0\r\n"
    "m=audio 11780 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)
INVITE_WITH_SDP = (
    crlf(
        f"""INVITE sip:*55*123456@sip.example.com SIP/2.0
Via: SIP/2.0/UDP 192.168.1.23:5062;branch=z9hG4bK2209437101;rport
From: "Reception" <sip:805E0C123456@sip.example.com>;tag=3815277451
To: <sip:*55*123456@sip.example.com>
Call-ID: 1_3325513640@192.168.1.23
CSeq: 1 INVITE
Contact: <sip:805E0C123456@192.168.1.23:5062>
Content-Type: application/sdp
Max-Forwards: 70
User-Agent: Yealink SIP-T33G 124.86.0.75
Content-Length: {len(INVITE_WITH_SDP_BODY)}

"""
    )
    + INVITE_WITH_SDP_BODY.encode()
)

BARE_LF = NOTIFY.replace(b"\r\n", b"\n")

VALID = {
    "yealink-register": YEALINK_REGISTER,
    "poly-register": POLY_REGISTER,
    "cisco-register": CISCO_REGISTER,
    "snom-register": SNOM_REGISTER,
    "notify": NOTIFY,
    "200-ok": OK_200,
    "401-www-authenticate": UNAUTHORIZED_401,
    "compact-forms": COMPACT_NOTIFY,
    "folded-headers": FOLDED,
    "multiple-via": MULTI_VIA_200,
    "invite-with-sdp": INVITE_WITH_SDP,
    "bare-lf": BARE_LF,
}
