"""Out-of-dialog NOTIFY (RFC 3261 + RFC 6665 §4.2) that makes phones re-sync or reboot.

``send_notifies`` drives thousands of non-INVITE client transactions on one event loop;
``notify_many`` is its blocking wrapper for Celery tasks. Each phone is addressed by its own
registered contact (several phones may share one SIP user), optionally at the source address
its REGISTER came from (NAT).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .message import BRANCH_MAGIC, Request, SipUri
from .parser import parse_message
from .transaction import ClientTransaction, PreparedRequest, Timers, TransactionTimeout
from .transport import TRANSPORTS, USER_AGENT, Address, SipEndpoint, TransportError

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
_CTL_OR_SPACE_RE = re.compile(r"[\s\x00-\x1f\x7f]")


@dataclass(frozen=True)
class NotifyTarget:
    """One phone. ``source`` (host, port): where its REGISTER came from; used instead of the
    contact's host:port when given, because behind NAT the contact is a private address."""

    key: object
    contact_uri: str
    transport: str = "udp"
    source: Address | None = None
    aor: str | None = None  # To header; the contact URI when absent


@dataclass(frozen=True, slots=True)
class NotifyOutcome:
    key: object
    status: int | None  # final SIP status; 408 on Timer F; None when nothing was answered
    reason: str
    outcome: str  # SENT | REJECTED | UNREACHABLE
    permanent: bool = False  # True when sending the same NOTIFY again cannot help
    retransmissions: int = 0


class NotifyTemplate:
    """The NOTIFY of DESIGN.md ("SIP rules that matter") for one local address and transport,
    formatted straight to bytes: a fan-out writes thousands of them, and a Headers object per
    NOTIFY, serialised again, cost more than the rest of the sender. ``build_notify`` parses what
    ``render`` writes, so the two cannot drift apart."""

    def __init__(self, *, transport: str, local_host: str, local_port: int) -> None:
        transport = transport.lower()
        if transport not in TRANSPORTS:
            raise ValueError(f"unsupported transport {transport!r}")
        if _CTL_OR_SPACE_RE.search(f"{local_host}{local_port}"):
            raise ValueError(f"invalid local address {local_host!r}:{local_port!r}")
        contact_params = ";transport=tcp" if transport == "tcp" else ""
        self._via = f"Via: SIP/2.0/{transport.upper()} {local_host}:{local_port};branch={BRANCH_MAGIC}"
        self._from = f";rport\r\nMax-Forwards: 70\r\nFrom: <sip:portal@{local_host}>;tag="
        self._contact = f"\r\nCSeq: 1 NOTIFY\r\nContact: <sip:portal@{local_host}:{local_port}{contact_params}>"
        self._tail = f"\r\nSubscription-State: terminated\r\nUser-Agent: {USER_AGENT}\r\nContent-Length: 0\r\n\r\n"

    def render(self, request_uri: str, to_uri: str, event: str, ids: tuple[str, str, str]) -> PreparedRequest:
        """``request_uri``, ``to_uri`` and ``event`` as ``notify_addresses`` and ``check_event``
        passed them; ``ids`` from ``NotifyIds``."""
        branch, tag, call_id = ids
        data = (
            f"NOTIFY {request_uri} SIP/2.0\r\n{self._via}{branch}{self._from}{tag}\r\nTo: <{to_uri}>\r\n"
            f"Call-ID: {call_id}{self._contact}\r\nEvent: {event}{self._tail}"
        ).encode()
        return PreparedRequest(data, (BRANCH_MAGIC + branch, "NOTIFY"))


class NotifyIds:
    """Branch, From tag and Call-ID of each NOTIFY (64, 48 and 128 random bits: every NOTIFY is a
    new transaction and dialog), drawn from the OS ``batch`` NOTIFYs at a time."""

    def __init__(self, batch: int = 256) -> None:
        self._batch = batch
        self._pool: list[tuple[str, str, str]] = []

    def next(self) -> tuple[str, str, str]:
        if not self._pool:
            hexed = os.urandom(30 * self._batch).hex()
            self._pool = [
                (hexed[i : i + 16], hexed[i + 16 : i + 28], hexed[i + 28 : i + 60]) for i in range(0, len(hexed), 60)
            ]
        return self._pool.pop()


def check_event(event: str) -> str:
    if not _EVENT_RE.fullmatch(event):
        raise ValueError(f"invalid Event value {event!r}")
    return event


def notify_addresses(contact_uri: str, aor: str | None = None) -> tuple[SipUri, str, str]:
    """The contact parsed, the Request-URI and the To URI. Raises ValueError on bad input."""
    uri = SipUri.parse(contact_uri)
    if uri.scheme != "sip":
        raise ValueError(f"{uri.scheme}: contacts (TLS) are not supported")
    request_uri = str(uri.without_headers() if uri.headers else uri)  # §19.1.5: no URI headers in a Request-URI
    to_uri = str(SipUri.parse(aor)) if aor else request_uri
    return uri, request_uri, to_uri


def build_notify(
    contact_uri: str,
    event: str,
    *,
    transport: str,
    local_host: str,
    local_port: int,
    aor: str | None = None,
) -> Request:
    """The NOTIFY to ``contact_uri``, as ``send_notifies`` sends it. Raises ValueError on bad input."""
    template = NotifyTemplate(transport=transport, local_host=local_host, local_port=local_port)
    check_event(event)
    _, request_uri, to_uri = notify_addresses(contact_uri, aor)
    message = parse_message(template.render(request_uri, to_uri, event, NotifyIds(batch=1).next()).data)
    assert isinstance(message, Request)
    return message


def destination_of(target: NotifyTarget, uri: SipUri | None = None) -> Address:
    """Where ``target``'s NOTIFY goes; ``uri``: its contact, when already parsed."""
    if target.source is not None:
        host, port = target.source
        return str(host), int(port)
    uri = uri or SipUri.parse(target.contact_uri)
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
    return await _FanOut(endpoint, items, event_for, concurrency).run()


class _FanOut:
    """Keeps ``concurrency`` NOTIFYs in flight: each transaction that settles records its outcome
    and starts the next NOTIFY from its callback. No task or future per NOTIFY over UDP to an IP
    address (the common case); a contact to resolve or a TCP connection to open gets a task."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        items: Sequence[NotifyTarget],
        event_for: Callable[[NotifyTarget], str] | str,
        concurrency: int,
    ) -> None:
        self.endpoint = endpoint
        self.items = items
        self.event_for = event_for
        self.concurrency = concurrency
        self.outcomes: list[NotifyOutcome | None] = [None] * len(items)
        self.left = len(items)
        self.in_flight = 0
        self.next_index = 0
        self.launching = False
        self.stopped = False
        self.ids = NotifyIds()
        self.templates: dict[str, NotifyTemplate] = {}
        self.events: set[str] = set()  # already checked
        self.tasks: set[asyncio.Task[None]] = set()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def run(self) -> list[NotifyOutcome]:
        try:
            self.launch()
            await self.done
        finally:
            # Cancelled: start nothing more (transactions in flight end on their own timers).
            self.stopped = True
            for task in self.tasks:
                task.cancel()
        return [outcome for outcome in self.outcomes if outcome is not None]

    def launch(self) -> None:
        # A send that fails at once settles inside start_udp_transaction: the loop below carries
        # on rather than recursing, so a dead socket cannot exhaust the stack.
        if self.launching or self.stopped:
            return
        self.launching = True
        try:
            while self.in_flight < self.concurrency and self.next_index < len(self.items):
                index = self.next_index
                self.next_index += 1
                self.start(index, self.items[index])
        finally:
            self.launching = False
        if self.left == 0 and not self.done.done():
            self.done.set_result(None)

    def start(self, index: int, target: NotifyTarget) -> None:
        key = target.key
        try:
            transport = target.transport.lower()
            template = self.templates.get(transport)
            if template is None:
                template = NotifyTemplate(
                    transport=transport, local_host=self.endpoint.advertised_host, local_port=self.endpoint.port
                )
                self.templates[transport] = template
            event = self.event_for if isinstance(self.event_for, str) else self.event_for(target)
            if event not in self.events:
                self.events.add(check_event(event))
            uri, request_uri, to_uri = notify_addresses(target.contact_uri, target.aor)
            request = template.render(request_uri, to_uri, event, self.ids.next())
            destination = destination_of(target, uri)
        except (ValueError, TypeError) as exc:
            self.record(index, NotifyOutcome(key, None, f"cannot address target: {exc}", UNREACHABLE, permanent=True))
            return
        except Exception as exc:
            # event_for is the caller's code: its bug must cost this target, not the whole batch.
            log.exception("preparing the NOTIFY for %r failed", key)
            self.record(index, NotifyOutcome(key, None, f"internal error: {exc!r}", UNREACHABLE, permanent=True))
            return
        self.in_flight += 1
        on_settled = functools.partial(self.settled, index, key)
        try:
            address = self.endpoint.ip_address_of(destination) if transport == "udp" else None
            if address is not None:
                self.endpoint.start_udp_transaction(request, address, on_settled=on_settled)
                return
        except Exception as exc:
            self.failed(index, key, exc, None)
            return
        task = asyncio.ensure_future(self.start_later(index, key, request, destination, transport, on_settled))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def start_later(
        self,
        index: int,
        key: object,
        request: PreparedRequest,
        destination: Address,
        transport: str,
        on_settled: Callable[[ClientTransaction], None],
    ) -> None:
        try:
            await self.endpoint.start_transaction(request, destination, transport=transport, on_settled=on_settled)
        except Exception as exc:
            self.failed(index, key, exc, None)

    def settled(self, index: int, key: object, transaction: ClientTransaction) -> None:
        response = transaction.response
        if response is None:
            self.failed(index, key, transaction.error, transaction)
            return
        retransmissions = transaction.retransmissions
        if 200 <= response.status < 300:
            outcome = NotifyOutcome(key, response.status, response.reason, SENT, retransmissions=retransmissions)
        else:
            outcome = NotifyOutcome(
                key,
                response.status,
                response.reason,
                REJECTED,
                permanent=response.status not in RETRYABLE_STATUSES,
                retransmissions=retransmissions,
            )
        self.finish(index, outcome)

    def failed(self, index: int, key: object, exc: BaseException | None, transaction: ClientTransaction | None) -> None:
        retransmissions = transaction.retransmissions if transaction is not None else 0
        if isinstance(exc, TransactionTimeout):
            outcome = NotifyOutcome(
                key, 408, "Request Timeout (no response)", UNREACHABLE, retransmissions=retransmissions
            )
        elif isinstance(exc, TransportError):
            outcome = NotifyOutcome(
                key, None, str(exc), UNREACHABLE, permanent=exc.permanent, retransmissions=retransmissions
            )
        else:
            # One bad target must not lose the outcomes of the thousands already sent.
            log.error("NOTIFY to %r failed", key, exc_info=exc)
            outcome = NotifyOutcome(key, None, f"internal error: {exc}", UNREACHABLE)
        self.finish(index, outcome)

    def finish(self, index: int, outcome: NotifyOutcome) -> None:
        self.in_flight -= 1
        self.record(index, outcome)
        self.launch()

    def record(self, index: int, outcome: NotifyOutcome) -> None:
        self.outcomes[index] = outcome
        self.left -= 1
