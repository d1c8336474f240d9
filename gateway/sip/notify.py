"""Out-of-dialog NOTIFY (RFC 3261 + RFC 6665 §4.2) that makes phones re-sync or reboot.

``send_notifies`` drives thousands of non-INVITE client transactions on one event loop;
``notify_many`` is its blocking wrapper for Celery tasks. Each phone is addressed by its own
registered contact (several phones may share one SIP user), optionally at the source address
its REGISTER came from (NAT).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .message import Headers, Request, SipUri
from .transaction import ClientTransaction, Timers, TransactionTimeout
from .transport import (
    TRANSPORTS,
    USER_AGENT,
    Address,
    SipEndpoint,
    TransportError,
    new_branch,
    new_tag,
)

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 200  # facts.md: 500+ in flight and even loopback drops datagrams

SENT = "sent"  # the phone answered 2xx (not that it acted)
REJECTED = "rejected"  # the phone answered >= 300
UNREACHABLE = "unreachable"  # Timer F, a transport error, or a target we cannot address

# Final responses after which the same NOTIFY may well succeed later.
RETRYABLE_STATUSES = frozenset({408, 480, 486, 500, 503, 504})

# event-type *( ";" param ), RFC 6665 §8.4; no spaces, no CR/LF (header injection).
_EVENT_RE = re.compile(
    r"[A-Za-z0-9\-.!%*_+`'~]+"
    r"(?:;[A-Za-z0-9\-.!%*_+`'~]+(?:=(?:[A-Za-z0-9\-.!%*_+`'~]+|\"[^\"\\\r\n]*\"))?)*"
)


@dataclass(frozen=True)
class NotifyTarget:
    """One phone. ``source`` (host, port): where its REGISTER came from; used instead of the
    contact's host:port when given, because behind NAT the contact is a private address."""

    key: object
    contact_uri: str
    transport: str = "udp"
    source: Address | None = None
    aor: str | None = None  # To header; the contact URI when absent


@dataclass(frozen=True)
class NotifyOutcome:
    key: object
    status: int | None  # final SIP status; 408 on Timer F; None when nothing was answered
    reason: str
    outcome: str  # SENT | REJECTED | UNREACHABLE
    permanent: bool = False  # True when sending the same NOTIFY again cannot help
    retransmissions: int = 0


def build_notify(
    contact_uri: str,
    event: str,
    *,
    transport: str,
    local_host: str,
    local_port: int,
    aor: str | None = None,
) -> Request:
    """The NOTIFY of DESIGN.md ("SIP rules that matter"). Raises ValueError on bad input."""
    transport = transport.lower()
    if transport not in TRANSPORTS:
        raise ValueError(f"unsupported transport {transport!r}")
    if not _EVENT_RE.fullmatch(event):
        raise ValueError(f"invalid Event value {event!r}")
    uri = SipUri.parse(contact_uri)
    if uri.scheme != "sip":
        raise ValueError(f"{uri.scheme}: contacts (TLS) are not supported")
    request_uri = str(uri.without_headers())  # §19.1.5: no URI headers in a Request-URI
    to_uri = str(SipUri.parse(aor)) if aor else request_uri
    contact_params = ";transport=tcp" if transport == "tcp" else ""
    headers = Headers(
        [
            (
                "Via",
                f"SIP/2.0/{transport.upper()} {local_host}:{local_port};branch={new_branch()};rport",
            ),
            ("Max-Forwards", "70"),
            ("From", f"<sip:portal@{local_host}>;tag={new_tag()}"),
            ("To", f"<{to_uri}>"),
            ("Call-ID", secrets.token_hex(16)),
            ("CSeq", "1 NOTIFY"),
            ("Contact", f"<sip:portal@{local_host}:{local_port}{contact_params}>"),
            ("Event", event),
            ("Subscription-State", "terminated"),
            ("User-Agent", USER_AGENT),
        ]
    )
    return Request(method="NOTIFY", uri=request_uri, headers=headers)


def destination_of(target: NotifyTarget) -> Address:
    if target.source is not None:
        host, port = target.source
        return str(host), int(port)
    uri = SipUri.parse(target.contact_uri)
    return uri.host, uri.port or 5060


async def send_notifies(
    targets: Iterable[NotifyTarget],
    event_for: Callable[[NotifyTarget], str] | str,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    t1: float = 0.5,
    t2: float | None = None,
    t4: float | None = None,
    local_host: str = "127.0.0.1",
    local_port: int = 0,
    advertised_host: str | None = None,
    endpoint: SipEndpoint | None = None,
) -> list[NotifyOutcome]:
    """Send one NOTIFY per target, at most ``concurrency`` in flight; outcomes in target order.

    Without ``endpoint`` a temporary one is bound to ``local_host:local_port`` (0: any port)
    and put in Via/From/Contact as ``advertised_host`` (default: ``local_host``; set it when
    binding 0.0.0.0). Pass a running ``endpoint`` to send from it instead, e.g. the SIP edge's,
    whose address NATed phones accept packets from; its own timers then apply.
    T2 and T4 default to the RFC values, scaled down with T1 when T1 is shortened (tests).
    Never raises for a target: every problem becomes that target's outcome.
    """
    items: Sequence[NotifyTarget] = list(targets)
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if not items:
        return []
    if endpoint is not None:
        return await _send_all(endpoint, items, event_for, concurrency)
    scaled = Timers.scaled(t1)
    timers = Timers(t1=t1, t2=scaled.t2 if t2 is None else t2, t4=scaled.t4 if t4 is None else t4)
    own = SipEndpoint(host=local_host, port=local_port, advertised_host=advertised_host, timers=timers)
    async with own:
        return await _send_all(own, items, event_for, concurrency)


def notify_many(
    targets: Iterable[NotifyTarget],
    event_for: Callable[[NotifyTarget], str] | str,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    t1: float = 0.5,
    t2: float | None = None,
    t4: float | None = None,
    local_host: str = "127.0.0.1",
    local_port: int = 0,
    advertised_host: str | None = None,
) -> list[NotifyOutcome]:
    """Blocking ``send_notifies`` for Celery tasks: runs its own event loop, so call it from
    synchronous code only (not from inside a running loop)."""
    return asyncio.run(
        send_notifies(
            targets,
            event_for,
            concurrency=concurrency,
            t1=t1,
            t2=t2,
            t4=t4,
            local_host=local_host,
            local_port=local_port,
            advertised_host=advertised_host,
        )
    )


async def _send_all(
    endpoint: SipEndpoint,
    items: Sequence[NotifyTarget],
    event_for: Callable[[NotifyTarget], str] | str,
    concurrency: int,
) -> list[NotifyOutcome]:
    outcomes: list[NotifyOutcome | None] = [None] * len(items)
    queue = iter(enumerate(items))

    # A fixed pool of workers rather than one task per target: 10,000 targets stay cheap.
    async def worker() -> None:
        for index, target in queue:
            outcomes[index] = await _notify_one(endpoint, target, event_for)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(items)))))
    return [outcome for outcome in outcomes if outcome is not None]


async def _notify_one(
    endpoint: SipEndpoint,
    target: NotifyTarget,
    event_for: Callable[[NotifyTarget], str] | str,
) -> NotifyOutcome:
    key = target.key
    try:
        event = event_for if isinstance(event_for, str) else event_for(target)
        request = build_notify(
            target.contact_uri,
            event,
            transport=target.transport,
            local_host=endpoint.advertised_host,
            local_port=endpoint.port,
            aor=target.aor,
        )
        destination = destination_of(target)
    except (ValueError, TypeError) as exc:
        return NotifyOutcome(key, None, f"cannot address target: {exc}", UNREACHABLE, permanent=True)
    except Exception as exc:
        # event_for is the caller's code: its bug must cost this target, not the whole batch.
        log.exception("preparing the NOTIFY for %r failed", key)
        return NotifyOutcome(key, None, f"internal error: {exc!r}", UNREACHABLE, permanent=True)
    transaction = None
    try:
        transaction = await endpoint.start_transaction(request, destination, transport=target.transport)
        response = await transaction.result()
    except TransactionTimeout:
        return NotifyOutcome(
            key,
            408,
            "Request Timeout (no response)",
            UNREACHABLE,
            retransmissions=_count(transaction),
        )
    except TransportError as exc:
        return NotifyOutcome(
            key,
            None,
            str(exc),
            UNREACHABLE,
            permanent=exc.permanent,
            retransmissions=_count(transaction),
        )
    except Exception as exc:
        # One bad target must not lose the outcomes of the thousands already sent.
        log.exception("NOTIFY to %s failed", target.contact_uri)
        return NotifyOutcome(key, None, f"internal error: {exc}", UNREACHABLE)
    retransmissions = transaction.retransmissions
    if 200 <= response.status < 300:
        return NotifyOutcome(key, response.status, response.reason, SENT, retransmissions=retransmissions)
    permanent = response.status not in RETRYABLE_STATUSES
    return NotifyOutcome(
        key,
        response.status,
        response.reason,
        REJECTED,
        permanent=permanent,
        retransmissions=retransmissions,
    )


def _count(transaction: ClientTransaction | None) -> int:
    return transaction.retransmissions if transaction is not None else 0
