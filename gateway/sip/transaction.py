"""SIP transactions (RFC 3261 §17): timers, retransmission and response matching.

Timers run on ``loop.call_later`` rather than one task per transaction, so that one event loop
can carry many thousands of transactions at once.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .message import BRANCH_MAGIC, Request, Response, make_response

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timers:
    """RFC 3261 §17.1.1.1 values; tests shorten ``t1``."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def timer_f(self) -> float:
        return 64 * self.t1

    @classmethod
    def scaled(cls, t1: float) -> Timers:
        """Keep the RFC's ratios (T2 = 8·T1, T4 = 10·T1) when T1 is shortened."""
        if t1 >= 0.5:
            return cls(t1=t1)
        return cls(t1=t1, t2=8 * t1, t4=10 * t1)


DEFAULT_TIMERS = Timers()


class State(enum.Enum):
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"  # INVITE server: ACK received for a non-2xx final response
    ACCEPTED = "accepted"  # INVITE server: 2xx sent (RFC 6026 §7.1)
    TERMINATED = "terminated"


class TransactionTimeout(Exception):
    """Timer F fired: no final response. The TU treats it as a 408 (§8.1.3.1)."""

    status = 408


ClientKey = tuple[str, str]  # (top Via branch, CSeq method), §17.1.3
ServerKey = tuple[str, str, str]  # (branch, sent-by, method), §17.2.3


def client_key(message: Request | Response) -> ClientKey | None:
    """Key under which a response finds the client transaction that sent its request."""
    try:
        branch = message.branch
        method = message.cseq.method
    except ValueError:
        return None
    if not branch:
        return None
    return branch, method


def server_key(request: Request) -> ServerKey | None:
    """§17.2.3 matching; None for RFC 2543 peers (no magic cookie), which we serve statelessly."""
    try:
        via = request.via
    except ValueError:
        return None
    branch = via.branch
    if not branch or not branch.startswith(BRANCH_MAGIC):
        return None
    method = "INVITE" if request.method == "ACK" else request.method
    sent_by = via.host if via.port is None else f"{via.host}:{via.port}"
    return branch, sent_by, method


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """A request already in wire form, with the key its responses will match: what a sender that
    formats thousands of requests from a template hands over instead of a ``Request``."""

    data: bytes
    key: ClientKey


class ClientTransaction:
    """Non-INVITE client transaction, RFC 3261 §17.1.2 (Figure 6).

    ``send`` hands bytes to the transport and may raise (any exception becomes a transport
    failure of this transaction, §17.1.4). ``result()`` returns the final response or raises
    ``TransactionTimeout`` or the transport's exception. ``on_settled``, when given, is called
    once, as soon as that outcome is known (cheaper than awaiting ``result()`` by the thousand).
    """

    # Thousands live at once (Timer K keeps each 5 s after its answer): no __dict__ apiece.
    __slots__ = (
        "_data",
        "_deadline",
        "_interval",
        "_lanes",
        "_loop",
        "_next_e",
        "_on_settled",
        "_on_terminated",
        "_result",
        "_send",
        "_timeout",
        "_timer",
        "absorbed",
        "error",
        "key",
        "provisional",
        "reliable",
        "request",
        "response",
        "state",
        "timers",
        "transmissions",
    )

    def __init__(
        self,
        request: Request | PreparedRequest,
        *,
        send: Callable[[bytes], None],
        reliable: bool,
        timers: Timers = DEFAULT_TIMERS,
        timeout: float | None = None,
        on_terminated: Callable[[ClientTransaction], None] | None = None,
        on_settled: Callable[[ClientTransaction], None] | None = None,
        lanes: ClientLanes | None = None,
    ) -> None:
        if isinstance(request, PreparedRequest):
            key: ClientKey | None = request.key
            self._data = request.data
        else:
            if request.method in ("INVITE", "ACK"):
                raise ValueError("INVITE client transactions are not implemented; ACK has none")
            key = client_key(request)
            self._data = request.to_bytes()
        if key is None or not key[0].startswith(BRANCH_MAGIC):
            raise ValueError("request needs a top Via with an RFC 3261 branch")
        if key[1] in ("INVITE", "ACK"):
            raise ValueError("INVITE client transactions are not implemented; ACK has none")
        self.key: ClientKey = key
        self.request = request
        self.reliable = reliable
        self.timers = timers
        self.state = State.TRYING
        self.transmissions = 0
        self.absorbed = 0  # responses received after the final one (retransmissions)
        self.provisional: Response | None = None
        self.response: Response | None = None  # the final response, once there is one
        self.error: BaseException | None = None  # or why there is none
        self._send = send
        self._timeout = timers.timer_f if timeout is None else timeout
        self._on_terminated = on_terminated
        self._on_settled = on_settled
        # The endpoint's shared lanes (lanes of its own for a transaction on other timers).
        self._lanes = lanes if lanes is not None and lanes.timers == timers else ClientLanes(timers)
        self._loop = asyncio.get_running_loop()
        self._result: asyncio.Future[Response] | None = None  # made when someone awaits result()
        self._interval = timers.t1
        # One timer at a time: the next of Timer E (retransmit) and Timer F (give up), then Timer K;
        # the first E and K in the endpoint's lanes when there are some. (A cancelled handle stays
        # in the loop's heap until its time: F is set only once the last E has fired.)
        self._timer: asyncio.TimerHandle | None = None
        self._next_e: float | None = None
        self._deadline = 0.0

    @property
    def retransmissions(self) -> int:
        return max(self.transmissions - 1, 0)

    def start(self) -> None:
        now = self._loop.time()
        self._deadline = now + self._timeout
        if not self.reliable:
            self._next_e = now + self._interval
            if self._next_e < self._deadline:
                self._lanes.first_e.add(self)
                self._transmit()
                return
        self._arm()
        self._transmit()

    async def result(self) -> Response:
        # A caller cancelled meanwhile cancels only this future; the timers run on regardless,
        # so the transaction still ends (and absorbs late responses) as the RFC says.
        if self._result is None:
            self._result = self._loop.create_future()
            if self.response is not None:
                self._result.set_result(self.response)
            elif self.error is not None:
                self._result.set_exception(self.error)
        return await self._result

    def receive(self, response: Response) -> None:
        if self.state in (State.COMPLETED, State.TERMINATED):
            self.absorbed += 1
            return
        if response.is_provisional:
            # §17.1.2.2: Trying → Proceeding; Timer E keeps running and is reset to T2 when it fires.
            self.state = State.PROCEEDING
            self.provisional = response
            return
        self.state = State.COMPLETED
        self._cancel_timer()
        # Timer K absorbs retransmitted final responses over UDP; zero over reliable transports.
        if not self.reliable:
            self._lanes.k.add(self)
        self._settle(response, None)
        if self.reliable:
            self._terminate()

    def fail(self, exc: BaseException) -> None:
        """Transport failure (§17.1.4) or shutdown: report to the TU and terminate."""
        if self.state is State.TERMINATED:
            return
        self._settle(None, exc)
        self._terminate()

    def _settle(self, response: Response | None, error: BaseException | None) -> None:
        if self.response is not None or self.error is not None:
            return
        self.response, self.error = response, error
        if self._result is not None and not self._result.done():
            if response is not None:
                self._result.set_result(response)
            else:
                self._result.set_exception(error)
        if self._on_settled is not None:
            on_settled, self._on_settled = self._on_settled, None
            on_settled(self)

    def _transmit(self) -> None:
        self.transmissions += 1
        try:
            self._send(self._data)
        except Exception as exc:
            self.fail(exc)

    def _arm(self) -> None:
        if self._next_e is not None and self._next_e < self._deadline:
            self._timer = self._loop.call_at(self._next_e, self._on_timer_e)
        else:
            self._timer = self._loop.call_at(self._deadline, self._on_timer_f)

    def _on_timer_e(self) -> None:
        if self.state is State.TRYING:
            self._interval = min(2 * self._interval, self.timers.t2)
        elif self.state is State.PROCEEDING:
            self._interval = self.timers.t2
        else:
            return
        self._next_e = self._loop.time() + self._interval
        self._arm()
        self._transmit()

    def _on_timer_f(self) -> None:
        if self.state in (State.TRYING, State.PROCEEDING):
            self.fail(TransactionTimeout(f"no final response within {self._timeout:g} s"))

    def _terminate(self) -> None:
        if self.state is State.TERMINATED:
            return
        self.state = State.TERMINATED
        self._cancel_timer()
        if self._result is not None and self._result.done() and not self._result.cancelled():
            # Nobody may be awaiting a failed result; mark it retrieved to avoid "never retrieved" logs.
            self._result.exception()
        if self._on_terminated is not None:
            self._on_terminated(self)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class TimerLane:
    """Timers of one fixed delay for many transactions on one loop. They expire in the order they
    were set, so a deque and a single loop handle serve them all, where ``call_later`` would give
    each its own handle, context copy and heap entry; and the handle waits ``slack`` seconds more,
    so that one wake-up serves every timer due meanwhile (late by at most that, never early). An
    entry cannot be cancelled: ``fire`` must find out whether its transaction has anything to do."""

    def __init__(self, delay: float, fire: Callable[[ClientTransaction], None], *, slack: float = 0.0) -> None:
        self.delay = delay
        self.slack = slack
        self._fire = fire
        self._entries: deque[tuple[float, ClientTransaction]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None

    def add(self, transaction: ClientTransaction) -> None:
        loop = self._loop = transaction._loop
        when = loop.time() + self.delay
        self._entries.append((when, transaction))
        if self._handle is None:
            self._handle = loop.call_at(when + self.slack, self._expire)

    def _expire(self) -> None:
        assert self._loop is not None
        self._handle = None
        now = self._loop.time()
        entries = self._entries
        while entries and entries[0][0] <= now:
            self._fire(entries.popleft()[1])
        if entries and self._handle is None:
            self._handle = self._loop.call_at(entries[0][0] + self.slack, self._expire)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._entries.clear()


class ClientLanes:
    """The timers nearly every client transaction of an endpoint sets, in lanes: Timer E's first
    step (T1; it only does anything when no answer came) and Timer K (T4)."""

    def __init__(self, timers: Timers) -> None:
        self.timers = timers
        # 10 ms late at most at RFC timings: a retransmission that late, or a transaction kept that
        # much longer, no phone can tell; shorter with shortened timers (tests).
        self.first_e = TimerLane(timers.t1, ClientTransaction._on_timer_e, slack=min(0.01, timers.t1 / 50))
        self.k = TimerLane(timers.t4, ClientTransaction._terminate, slack=min(0.01, timers.t4 / 50))

    def close(self) -> None:
        self.first_e.close()
        self.k.close()


class ServerTransaction:
    """Non-INVITE server transaction, RFC 3261 §17.2.2 (Figure 8).

    ``send`` delivers a response to where §18.2.2 says (the transport layer decides). The TU
    calls ``respond``; retransmitted requests are answered with the last response sent.
    INVITE requests get an ``InviteServerTransaction`` instead.
    """

    def __init__(
        self,
        request: Request,
        *,
        send: Callable[[Response], None],
        reliable: bool,
        timers: Timers = DEFAULT_TIMERS,
        on_terminated: Callable[[ServerTransaction], None] | None = None,
    ) -> None:
        if request.method in ("INVITE", "ACK"):
            raise ValueError("INVITE server transactions are not implemented")
        self.key = server_key(request)
        self.request = request
        self.reliable = reliable
        self.timers = timers
        self.state = State.TRYING
        self.last_response: Response | None = None
        self.retransmitted_requests = 0
        self._send = send
        self._on_terminated = on_terminated
        self._loop = asyncio.get_running_loop()
        self._timer_j: asyncio.TimerHandle | None = None

    def respond(self, response: Response) -> None:
        if self.state in (State.COMPLETED, State.TERMINATED):
            raise RuntimeError("a final response was already sent")
        self.last_response = response
        if response.is_provisional:
            self.state = State.PROCEEDING
            self._send(response)
            return
        self.state = State.COMPLETED
        self._send(response)
        # Timer J keeps the final response around for request retransmissions over UDP.
        if self.reliable:
            self._terminate()
        else:
            self._timer_j = self._loop.call_later(self.timers.timer_f, self._terminate)

    def receive_retransmission(self) -> None:
        self.retransmitted_requests += 1
        if self.state in (State.PROCEEDING, State.COMPLETED) and self.last_response is not None:
            self._send(self.last_response)

    def close(self) -> None:
        self._terminate()

    def _terminate(self) -> None:
        if self.state is State.TERMINATED:
            return
        self.state = State.TERMINATED
        if self._timer_j is not None:
            self._timer_j.cancel()
        if self._on_terminated is not None:
            self._on_terminated(self)


class InviteServerTransaction:
    """INVITE server transaction, RFC 3261 §17.2.1 (Figure 7) as amended by RFC 6026 §7.1.

    ``start`` sends 100 Trying at once (the TU may consult the database before answering).
    A non-2xx final response is retransmitted over UDP (Timer G, from T1 doubling to T2) until
    the ACK arrives or Timer H (64·T1) gives up; the ACK moves it to Confirmed, where Timer I
    (T4 over UDP, 0 over TCP) absorbs further ACKs. A 2xx moves it to Accepted: the dialog layer
    (UAS core, §13.3.1.4) retransmits the 2xx itself until its ACK, which is a request of its own;
    Timer L (64·T1) absorbs retransmitted INVITEs meanwhile.
    """

    def __init__(
        self,
        request: Request,
        *,
        send: Callable[[Response], None],
        reliable: bool,
        timers: Timers = DEFAULT_TIMERS,
        on_terminated: Callable[[InviteServerTransaction], None] | None = None,
    ) -> None:
        if request.method != "INVITE":
            raise ValueError("an INVITE server transaction serves INVITE requests")
        self.key = server_key(request)
        self.request = request
        self.reliable = reliable
        self.timers = timers
        self.state = State.PROCEEDING
        self.last_response: Response | None = None
        self.retransmitted_requests = 0
        self.response_retransmissions = 0
        self.timed_out = False  # Timer H fired: no ACK ever came for the final response
        self.incoming: object | None = None  # the transport's IncomingRequest, for CANCEL
        self._send = send
        self._on_terminated = on_terminated
        self._loop = asyncio.get_running_loop()
        self._interval = timers.t1
        self._timer: asyncio.TimerHandle | None = None  # G, H, I or L: one at a time but G with H
        self._timer_h: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self.respond(make_response(self.request, 100))

    def respond(self, response: Response) -> None:
        if self.state is not State.PROCEEDING:
            raise RuntimeError("a final response was already sent")
        self.last_response = response
        self._transmit(response)
        if response.is_provisional:
            return
        if response.status < 300:
            self.state = State.ACCEPTED
            self._timer = self._loop.call_later(self.timers.timer_f, self._terminate)  # Timer L
            return
        self.state = State.COMPLETED
        if not self.reliable:
            self._timer = self._loop.call_later(self._interval, self._on_timer_g)
        self._timer_h = self._loop.call_later(self.timers.timer_f, self._on_timer_h)

    def receive_retransmission(self) -> None:
        """The INVITE again: our last provisional or non-2xx final response again (§17.2.1);
        absorbed once a 2xx was sent (RFC 6026: the UAS core retransmits that one)."""
        self.retransmitted_requests += 1
        if self.state in (State.PROCEEDING, State.COMPLETED) and self.last_response is not None:
            self._transmit(self.last_response)

    def receive_ack(self) -> bool:
        """An ACK with this transaction's branch. True when it was ours to absorb: the ACK of a
        non-2xx response. In Accepted state the ACK belongs to the dialog (a peer that reused the
        INVITE's branch for its 2xx ACK), so False."""
        if self.state is State.COMPLETED:
            self.state = State.CONFIRMED
            self._cancel(self._timer, self._timer_h)
            if self.reliable:
                self._terminate()
            else:
                self._timer = self._loop.call_later(self.timers.t4, self._terminate)  # Timer I
            return True
        return self.state in (State.CONFIRMED, State.TERMINATED)

    def close(self) -> None:
        self._terminate()

    def _transmit(self, response: Response) -> None:
        try:
            self._send(response)
        except Exception as exc:
            # §17.2.4: a transport failure ends the transaction; the TU learns from its state.
            log.info("INVITE server transaction %s: cannot send %s: %s", self.key, response.status, exc)
            self._terminate()

    def _on_timer_g(self) -> None:
        if self.state is not State.COMPLETED or self.last_response is None:
            return
        self._interval = min(2 * self._interval, self.timers.t2)
        self._timer = self._loop.call_later(self._interval, self._on_timer_g)
        self.response_retransmissions += 1
        self._transmit(self.last_response)

    def _on_timer_h(self) -> None:
        if self.state is State.COMPLETED:
            self.timed_out = True
            self._terminate()

    def _terminate(self) -> None:
        if self.state is State.TERMINATED:
            return
        self.state = State.TERMINATED
        self._cancel(self._timer, self._timer_h)
        if self._on_terminated is not None:
            self._on_terminated(self)

    @staticmethod
    def _cancel(*handles: asyncio.TimerHandle | None) -> None:
        for handle in handles:
            if handle is not None:
                handle.cancel()
