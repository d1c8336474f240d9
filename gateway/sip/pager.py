"""Pager-mode instant messages (RFC 3428): a MESSAGE with a short text/plain body that phones show
on their screen, sent outside any dialog through a non-INVITE client transaction."""

from __future__ import annotations

import secrets

from .message import Headers, Request, SipUri
from .transport import TRANSPORTS, Address, SipEndpoint, new_tag

# RFC 3428 §6: over a transport without congestion control a MESSAGE stays within 1300 bytes.
MAX_UDP_MESSAGE_BYTES = 1300


def build_text_message(
    target_uri: str,
    text: str,
    *,
    via: str,
    local_host: str,
    transport: str,
    user_agent: str,
    aor: str | None = None,
    from_display: str | None = None,
) -> Request:
    """The MESSAGE for ``target_uri`` (the phone's contact). Raises ValueError on bad input.

    No Contact: MESSAGE requests do not create dialogs and carry none (RFC 3428 §4)."""
    transport = transport.lower()
    if transport not in TRANSPORTS:
        raise ValueError(f"unsupported transport {transport!r}")
    uri = SipUri.parse(target_uri)
    if uri.scheme != "sip":
        raise ValueError(f"{uri.scheme}: targets (TLS) are not supported")
    request_uri = str(uri.without_headers())
    to_uri = str(SipUri.parse(aor)) if aor else request_uri
    display = f'"{_quoted(from_display)}" ' if from_display else ""
    headers = Headers(
        [
            ("Via", via),
            ("Max-Forwards", "70"),
            ("From", f"{display}<sip:portal@{local_host}>;tag={new_tag()}"),
            ("To", f"<{to_uri}>"),
            ("Call-ID", secrets.token_hex(16)),
            ("CSeq", "1 MESSAGE"),
            ("Content-Type", "text/plain;charset=UTF-8"),
            ("User-Agent", user_agent),
        ]
    )
    body = text.encode()
    request = Request(method="MESSAGE", uri=request_uri, headers=headers, body=body)
    if transport == "udp" and len(request.to_bytes()) > MAX_UDP_MESSAGE_BYTES:
        raise ValueError(f"a MESSAGE over UDP stays within {MAX_UDP_MESSAGE_BYTES} bytes (RFC 3428 §6)")
    return request


def _quoted(text: str) -> str:
    # A quoted-string may not hold CR/LF, and '"' and '\' need escaping (RFC 3261 §25.1).
    return "".join(f"\\{c}" if c in '"\\' else c for c in text if c >= " ")


async def send_text_message(
    endpoint: SipEndpoint,
    target_uri: str,
    text: str,
    *,
    destination: Address,
    transport: str = "udp",
    aor: str | None = None,
    from_display: str | None = None,
):
    """Send one MESSAGE from ``endpoint``; its final response (2xx, including 202 Accepted, means
    delivered). Raises ValueError, TransactionTimeout or TransportError."""
    request = build_text_message(
        target_uri,
        text,
        via=endpoint.via(transport),
        local_host=endpoint.advertised_host,
        transport=transport,
        user_agent=endpoint.user_agent,
        aor=aor,
        from_display=from_display,
    )
    return await endpoint.send_request(request, destination, transport=transport)
