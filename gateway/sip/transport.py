"""SIP transport layer (RFC 3261 §18) over asyncio: one UDP socket, TCP connections, dispatch.

A ``SipEndpoint`` sends requests through client transactions and hands incoming requests to a
pluggable handler (the SIP edge puts REGISTER/INVITE logic there). INVITEs get an INVITE server
transaction (100 Trying at once); ``answer`` turns one into a call that ends with a BYE. ACKs,
CANCELs and requests inside a dialog are the endpoint's own business and never reach the
handler. Garbage on the wire is logged and dropped; it never reaches the handler nor stops the
endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import ipaddress
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Self

from .dialog import Dialog, DialogId, ServerCall
from .message import (
    BRANCH_MAGIC,
    Message,
    Request,
    Response,
    Via,
    make_response,
    split_values,
)
from .parser import ParseError, StreamFramer, parse_message
from .transaction import (
    DEFAULT_TIMERS,
    ClientKey,
    ClientLanes,
    ClientTransaction,
    InviteServerTransaction,
    PreparedRequest,
    ServerKey,
    ServerTransaction,
    State,
    Timers,
    client_key,
    server_key,
)

log = logging.getLogger(__name__)

Address = tuple[str, int]
TRANSPORTS = ("udp", "tcp")
MAX_UDP_PAYLOAD = 65_507
USER_AGENT = "SIPGatewayPortal/1.0"


class TransportError(Exception):
    """Sending failed. ``permanent`` says whether trying again later could help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass
class EndpointStats:
    requests_sent: int = 0
    retransmissions: int = 0
    responses_received: int = 0
    requests_received: int = 0
    dropped: int = 0  # unparseable input
    stray_responses: int = 0  # no transaction (late, or not ours)
    absorbed: int = 0  # retransmitted final responses swallowed by their transaction
    throttled: int = 0  # packets refused by the admission check (flood control)
    stray_acks: int = 0  # ACKs matching neither a transaction nor a call


@dataclass
class IncomingRequest:
    """A request for the handler, with the means to answer it through its transaction."""

    request: Request
    source: Address
    transport: str
    _send: Callable[[Response], None] = field(repr=False)
    responded: bool = False
    final_sent: bool = False
    _connection: _StreamConnection | None = field(default=None, repr=False)

    def respond(
        self,
        status: int,
        reason: str | None = None,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        to_tag: str | None = None,
    ) -> Response:
        response = make_response(
            self.request,
            status,
            reason,
            to_tag=to_tag or new_tag(),
            headers=headers or (),
            body=body,
        )
        self.send(response)
        return response

    def send(self, response: Response) -> None:
        if self.final_sent:
            raise RuntimeError("a final response was already sent")
        self._send(response)
        self.responded = True
        self.final_sent = response.is_final


RequestHandler = Callable[[IncomingRequest], Awaitable[None] | None]


def new_branch() -> str:
    return BRANCH_MAGIC + secrets.token_hex(8)


def new_tag() -> str:
    return secrets.token_hex(6)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: SipEndpoint) -> None:
        self._endpoint = endpoint

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        self._endpoint._on_datagram(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        # ICMP errors on an unconnected socket cannot be tied to a transaction; Timer F will tell.
        log.debug("UDP error: %s", exc)


class _StreamConnection(asyncio.Protocol):
    """One TCP connection, outgoing or accepted; shared by every transaction to that peer."""

    def __init__(self, endpoint: SipEndpoint) -> None:
        self._endpoint = endpoint
        self._framer = StreamFramer()
        self.transport: asyncio.Transport | None = None
        self.peer: Address | None = None
        self.closed = False
        self.transactions: set[ClientTransaction] = set()
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1]) if peer else None
        self._endpoint._connection_opened(self)
        self.touch()

    def data_received(self, data: bytes) -> None:
        self.touch()
        try:
            messages = self._framer.feed(data)
        except ParseError as exc:
            # A broken stream cannot be resynchronised (§18.3): drop the connection.
            self._endpoint.stats.dropped += 1
            log.info("closing TCP connection from %s: %s", self.peer, exc)
            self.close()
            return
        for message in messages:
            source = self.peer or ("", 0)
            if not self._endpoint._admit(source):
                continue
            self._endpoint._dispatch(message, source, "tcp", self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._idle is not None:
            self._idle.cancel()
        self._endpoint._connection_lost(self)
        error = TransportError(f"TCP connection to {self.peer} lost: {exc or 'closed'}")
        for transaction in list(self.transactions):
            transaction.fail(error)

    def send(self, data: bytes) -> None:
        if self.closed or self.transport is None or self.transport.is_closing():
            raise TransportError(f"TCP connection to {self.peer} is closed")
        self.touch()
        self.transport.write(data)

    def touch(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(self._endpoint.tcp_idle_timeout, self._on_idle)

    def _on_idle(self) -> None:
        if self.transactions:
            self.touch()
        else:
            self.close()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class SipEndpoint:
    """UDP socket + TCP connections + transaction tables.

    ``host`` is the address we bind; ``advertised_host`` (default ``host``) the one we put in
    Via sent-by and Contact. With ``tcp_listen`` a TCP listener takes the same port number as
    UDP, so one Via sent-by serves both.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        advertised_host: str | None = None,
        timers: Timers = DEFAULT_TIMERS,
        handler: RequestHandler | None = None,
        tcp_listen: bool = False,
        tcp_idle_timeout: float = 64.0,
        admit: Callable[[str], bool] | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.host = host
        self.port = port
        self.advertised_host = advertised_host or host
        self.timers = timers
        self.handler = handler
        self.tcp_listen = tcp_listen
        self.tcp_idle_timeout = tcp_idle_timeout
        # Called with the source IP of every packet before it is parsed; False drops it.
        self.admit = admit
        self.user_agent = user_agent
        self.stats = EndpointStats()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp_server: asyncio.Server | None = None
        self._connections: dict[Address, _StreamConnection] = {}
        self._connecting: dict[Address, asyncio.Future[_StreamConnection]] = {}
        self._clients: dict[ClientKey, ClientTransaction] = {}
        self._servers: dict[ServerKey, ServerTransaction | InviteServerTransaction] = {}
        self._calls: dict[DialogId, ServerCall] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._client_terminated_callback = self._client_terminated  # one bound method, not one apiece
        self._lanes = ClientLanes(timers)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        # With port 0 the kernel picks a free UDP port, which TCP may hold already: pick again.
        attempts = 20 if self.port == 0 and self.tcp_listen else 1
        requested = self.port
        for attempt in range(attempts):
            self.port = requested
            await self._bind_udp()
            if not self.tcp_listen:
                return
            try:
                await self._listen_tcp()
                return
            except TransportError:
                await self.close()
                if attempt == attempts - 1:
                    raise

    async def _bind_udp(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            # Bursts of responses from many phones at once: give the kernel room to queue them.
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, option, 4 * 1024 * 1024)
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise TransportError(f"cannot bind UDP {self.host}:{self.port}: {exc}", permanent=True) from exc
        sock.setblocking(False)
        transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), sock=sock)
        self._udp = transport
        self.port = sock.getsockname()[1]

    async def _listen_tcp(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._tcp_server = await loop.create_server(
                lambda: _StreamConnection(self),
                self.host,
                self.port,
                reuse_address=True,
            )
        except OSError as exc:
            raise TransportError(f"cannot listen on TCP {self.host}:{self.port}: {exc}", permanent=True) from exc

    async def close(self) -> None:
        closed = TransportError("endpoint closed")
        for transaction in list(self._clients.values()):
            transaction.fail(closed)
        self._lanes.close()
        for server in list(self._servers.values()):
            server.close()
        for call in list(self._calls.values()):
            call.close()
        for task in list(self._tasks):
            task.cancel()
        for pending in list(self._connecting.values()):
            pending.cancel()
        for connection in list(self._connections.values()):
            connection.close()
        if self._tcp_server is not None:
            self._tcp_server.close()
            await self._tcp_server.wait_closed()
            self._tcp_server = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        await asyncio.sleep(0)  # let connection_lost callbacks run

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def address(self) -> Address:
        return self.host, self.port

    def via(self, transport: str) -> str:
        """A fresh top Via for a request we originate (RFC 3581 rport asks for the source port)."""
        return f"SIP/2.0/{transport.upper()} {self.advertised_host}:{self.port};branch={new_branch()};rport"

    # -- client side ---------------------------------------------------------------------------

    async def send_request(self, request: Request, destination: Address, *, transport: str = "udp") -> Response:
        """Send through a new client transaction; return its final response.

        Raises ``TransactionTimeout`` (Timer F) or ``TransportError``.
        """
        transaction = await self.start_transaction(request, destination, transport=transport)
        return await transaction.result()

    async def start_transaction(
        self,
        request: Request | PreparedRequest,
        destination: Address,
        *,
        transport: str = "udp",
        on_settled: Callable[[ClientTransaction], None] | None = None,
    ) -> ClientTransaction:
        """Like ``send_request`` but hands back the running transaction (for its counters)."""
        transport = transport.lower()
        if transport not in TRANSPORTS:
            raise TransportError(f"unsupported transport {transport!r}", permanent=True)
        key = self._free_key(request)
        if transport == "udp" and (address := self.ip_address_of(destination)) is not None:
            return self._start(request, key, address, None, self.timers.timer_f, on_settled)
        loop = asyncio.get_running_loop()
        started = loop.time()
        address = await self._resolve(destination, transport)
        connection = await self._connect(address) if transport == "tcp" else None
        # Timer F counts from the start, so a slow TCP connect eats into it.
        remaining = max(self.timers.timer_f - (loop.time() - started), 0.0)
        return self._start(request, key, address, connection, remaining, on_settled)

    def start_udp_transaction(
        self,
        request: Request | PreparedRequest,
        address: Address,
        *,
        on_settled: Callable[[ClientTransaction], None] | None = None,
    ) -> ClientTransaction:
        """``start_transaction`` over UDP to an address from ``ip_address_of`` (no name to
        resolve): it starts at once, without an await, so that a sender can start the next one
        from the ``on_settled`` callback of the last."""
        return self._start(request, self._free_key(request), address, None, self.timers.timer_f, on_settled)

    def _free_key(self, request: Request | PreparedRequest) -> ClientKey | None:
        key = request.key if isinstance(request, PreparedRequest) else client_key(request)
        if key is not None and key in self._clients:
            raise ValueError(f"a transaction with branch {key[0]} is already running")
        return key

    def _start(
        self,
        request: Request | PreparedRequest,
        key: ClientKey | None,
        address: Address,
        connection: _StreamConnection | None,
        timeout: float,
        on_settled: Callable[[ClientTransaction], None] | None,
    ) -> ClientTransaction:
        if connection is not None:
            send: Callable[[bytes], None] = connection.send

            def terminated(transaction: ClientTransaction) -> None:
                self._client_terminated(transaction)
                connection.transactions.discard(transaction)

        else:
            send = functools.partial(self._send_udp, address=address)
            terminated = self._client_terminated_callback

        transaction = ClientTransaction(
            request,
            send=send,
            reliable=connection is not None,
            timers=self.timers,
            timeout=timeout,
            on_terminated=terminated,
            on_settled=on_settled,
            lanes=self._lanes,
        )
        self._clients[transaction.key] = transaction
        if connection is not None:
            connection.transactions.add(transaction)
        self.stats.requests_sent += 1
        transaction.start()
        return transaction

    def _client_terminated(self, transaction: ClientTransaction) -> None:
        self.stats.retransmissions += transaction.retransmissions
        if self._clients.get(transaction.key) is transaction:
            del self._clients[transaction.key]

    @staticmethod
    def ip_address_of(destination: Address) -> Address | None:
        """``destination`` ready to send to when its host is an IP address; None when it is a
        name to resolve. Raises TransportError (permanent) for an impossible port."""
        host, port = destination
        if not isinstance(port, int) or not 0 < port < 65536:
            raise TransportError(f"invalid port {port!r}", permanent=True)
        host = host.strip("[]")
        return (host, port) if _is_ip_address(host) else None

    async def _resolve(self, destination: Address, transport: str) -> Address:
        address = self.ip_address_of(destination)
        if address is not None:
            return address
        host, port = destination
        host = host.strip("[]")
        loop = asyncio.get_running_loop()
        kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
        try:
            infos = await loop.getaddrinfo(host, port, family=socket.AF_INET, type=kind)
        except (OSError, UnicodeError) as exc:
            raise TransportError(f"cannot resolve {host!r}: {exc}") from exc
        if not infos:
            raise TransportError(f"cannot resolve {host!r}")
        sockaddr = infos[0][4]
        return str(sockaddr[0]), int(sockaddr[1])

    def _send_udp(self, data: bytes, address: Address) -> None:
        if self._udp is None or self._udp.is_closing():
            raise TransportError("UDP socket is closed")
        if len(data) > MAX_UDP_PAYLOAD:
            raise TransportError(f"message of {len(data)} bytes does not fit a datagram", permanent=True)
        try:
            self._udp.sendto(data, address)
        except OSError as exc:
            raise TransportError(f"UDP send to {address} failed: {exc}") from exc

    async def _connect(self, address: Address) -> _StreamConnection:
        connection = self._connections.get(address)
        if connection is not None and not connection.closed:
            return connection
        pending = self._connecting.get(address)
        if pending is None:
            pending = asyncio.ensure_future(self._open_connection(address))
            self._connecting[address] = pending
            pending.add_done_callback(lambda _: self._connecting.pop(address, None))
        return await asyncio.shield(pending)

    async def _open_connection(self, address: Address) -> _StreamConnection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timers.timer_f):
                _, connection = await loop.create_connection(lambda: _StreamConnection(self), *address)
        except TimeoutError as exc:
            raise TransportError(f"TCP connect to {address} timed out") from exc
        except OSError as exc:
            raise TransportError(f"TCP connect to {address} failed: {exc}") from exc
        return connection

    def _connection_opened(self, connection: _StreamConnection) -> None:
        if connection.peer is not None:
            self._connections[connection.peer] = connection

    def _connection_lost(self, connection: _StreamConnection) -> None:
        if connection.peer is not None and self._connections.get(connection.peer) is connection:
            del self._connections[connection.peer]

    # -- incoming ------------------------------------------------------------------------------

    def _admit(self, source: Address) -> bool:
        if self.admit is None or self.admit(source[0]):
            return True
        self.stats.throttled += 1
        return False

    def _on_datagram(self, data: bytes, source: Address) -> None:
        # CRLF keepalives and STUN binding requests (RFC 5626 §3.5) are not SIP: ignore quietly.
        if not data.strip(b"\r\n") or data[:1] in (b"\x00", b"\x01"):
            return
        if not self._admit(source):
            return
        try:
            message = parse_message(data)
        except ParseError as exc:
            self.stats.dropped += 1
            log.debug("dropped datagram from %s:%s: %s", source[0], source[1], exc)
            return
        self._dispatch(message, source, "udp", None)

    def _dispatch(
        self,
        message: Message,
        source: Address,
        transport: str,
        connection: _StreamConnection | None,
    ) -> None:
        try:
            if isinstance(message, Response):
                self._on_response(message)
            else:
                self._on_request(message, source, transport, connection)
        except Exception:
            self.stats.dropped += 1
            log.exception("error handling message from %s", source)

    def _on_response(self, response: Response) -> None:
        self.stats.responses_received += 1
        key = client_key(response)
        transaction = self._clients.get(key) if key is not None else None
        if transaction is None:
            self.stats.stray_responses += 1
            return
        if transaction.state in (State.COMPLETED, State.TERMINATED):
            self.stats.absorbed += 1
        transaction.receive(response)

    def _on_request(
        self,
        request: Request,
        source: Address,
        transport: str,
        connection: _StreamConnection | None,
    ) -> None:
        self.stats.requests_received += 1
        _stamp_via(request, source)
        key = server_key(request)
        if request.method == "ACK":
            self._on_ack(request, key)
            return
        if key is not None and key in self._servers:
            self._servers[key].receive_retransmission()
            return

        def send(response: Response) -> None:
            self._send_response(response, transport, connection)

        reliable = transaction_is_reliable(transport)
        server: ServerTransaction | InviteServerTransaction | None = None
        if request.method == "INVITE":
            server = InviteServerTransaction(
                request, send=send, reliable=reliable, timers=self.timers, on_terminated=self._server_terminated
            )
        elif key is not None:
            server = ServerTransaction(
                request, send=send, reliable=reliable, timers=self.timers, on_terminated=self._server_terminated
            )
        if server is not None and key is not None:
            self._servers[key] = server
        incoming = IncomingRequest(
            request, source, transport, server.respond if server is not None else send, _connection=connection
        )
        if isinstance(server, InviteServerTransaction):
            server.incoming = incoming  # for a CANCEL to answer 487
            server.start()
        if request.method == "CANCEL":
            self._on_cancel(incoming, key)
            return
        to_tag = _to_tag(request)
        if to_tag is not None and request.method != "REGISTER":
            self._on_in_dialog(incoming, to_tag)
            return
        if self.handler is None:
            incoming.respond(501)
            return
        self._call_handler(incoming)

    def _on_ack(self, request: Request, key: ServerKey | None) -> None:
        server = self._servers.get(key) if key is not None else None
        if isinstance(server, InviteServerTransaction) and server.receive_ack():
            return  # the ACK of a non-2xx response: the transaction's (§17.2.1)
        call = self._calls.get(_dialog_id(request, _to_tag(request)))
        if call is not None:
            call.receive_ack(request)  # the ACK of a 2xx: the dialog's (§13.3.1.4)
            return
        self.stats.stray_acks += 1

    def _on_cancel(self, incoming: IncomingRequest, key: ServerKey | None) -> None:
        """§9.2: a CANCEL matches the INVITE transaction of the same branch; while that is still
        without a final response it gets 487, and the CANCEL itself always gets 200."""
        invite = self._servers.get((key[0], key[1], "INVITE")) if key is not None else None
        if not isinstance(invite, InviteServerTransaction):
            incoming.respond(481)
            return
        incoming.respond(200)
        pending = invite.incoming
        if invite.state is State.PROCEEDING and pending is not None and not pending.final_sent:
            pending.respond(487)

    def _on_in_dialog(self, incoming: IncomingRequest, to_tag: str) -> None:
        """A request with a To tag belongs to a dialog (§12.2.2): ours, or none (481)."""
        request = incoming.request
        call = self._calls.get(_dialog_id(request, to_tag))
        if call is None:
            incoming.respond(481, to_tag=to_tag)
        elif request.method == "BYE":
            incoming.respond(200, to_tag=to_tag)
            call.receive_bye()
        else:
            # Our calls carry no media and last a moment: nothing to modify, refresh or inform.
            incoming.respond(501, to_tag=to_tag)

    def answer(
        self,
        incoming: IncomingRequest,
        *,
        body: bytes = b"",
        content_type: str = "application/sdp",
        headers: list[tuple[str, str]] | None = None,
    ) -> ServerCall:
        """Answer an INVITE with 200 OK (Contact = this endpoint) and keep the call until it is
        hung up: the returned ``ServerCall`` retransmits the 2xx until the ACK and sends the BYE.
        Raises ValueError when the INVITE cannot found a dialog (answer it 400 instead)."""
        request = incoming.request
        if request.method != "INVITE":
            raise ValueError("only an INVITE can be answered with a call")
        local_tag = new_tag()
        dialog = Dialog.from_invite(request, local_tag=local_tag)
        contact_params = ";transport=tcp" if incoming.transport == "tcp" else ""
        extra = [
            ("Contact", f"<sip:edge@{self.advertised_host}:{self.port}{contact_params}>"),
            ("User-Agent", self.user_agent),
            *(headers or ()),
        ]
        if body:
            extra.append(("Content-Type", content_type))
        response = make_response(request, 200, to_tag=local_tag, headers=extra, body=body)
        incoming.send(response)

        def send(retransmitted: Response) -> None:
            self._send_response(retransmitted, incoming.transport, incoming._connection)

        call = ServerCall(
            self,
            dialog,
            response,
            send=send,
            transport=incoming.transport,
            peer=incoming.source,
            timers=self.timers,
            on_ended=self._call_ended,
        )
        self._calls[dialog.id] = call
        return call

    def _call_ended(self, call: ServerCall) -> None:
        if self._calls.get(call.dialog.id) is call:
            del self._calls[call.dialog.id]

    def _call_handler(self, incoming: IncomingRequest) -> None:
        assert self.handler is not None
        try:
            result = self.handler(incoming)
        except Exception:
            log.exception("SIP handler failed on %s", incoming.request.method)
            self._answer_500(incoming)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(self._await_handler(result, incoming))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _await_handler(self, result: Awaitable[None], incoming: IncomingRequest) -> None:
        try:
            await result
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("SIP handler failed on %s", incoming.request.method)
            self._answer_500(incoming)

    @staticmethod
    def _answer_500(incoming: IncomingRequest) -> None:
        if incoming.request.method != "ACK" and not incoming.final_sent:
            try:
                incoming.respond(500)
            except Exception:
                log.exception("could not send 500")

    def _server_terminated(self, server: ServerTransaction | InviteServerTransaction) -> None:
        if server.key is not None and self._servers.get(server.key) is server:
            del self._servers[server.key]

    def _send_response(self, response: Response, transport: str, connection: _StreamConnection | None) -> None:
        """§18.2.2 with RFC 3581: back over the same connection, or to received:rport."""
        if transport == "tcp":
            if connection is None:
                raise TransportError("no connection to answer on")
            connection.send(response.to_bytes())
            return
        via = response.via
        host = via.received or via.host
        port = via.rport or via.port or 5060
        self._send_udp(response.to_bytes(), (host, port))


def transaction_is_reliable(transport: str) -> bool:
    return transport != "udp"


def _is_ip_address(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET, host)  # the common case, without ipaddress's Python
        return True
    except (OSError, ValueError):
        pass
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _to_tag(request: Request) -> str | None:
    try:
        return request.to.tag
    except ValueError:
        return None


def _dialog_id(request: Request, to_tag: str | None) -> DialogId:
    try:
        from_tag = request.from_.tag or ""
    except ValueError:
        from_tag = ""
    return request.call_id, to_tag or "", from_tag


def _stamp_via(request: Request, source: Address) -> None:
    """§18.2.1 + RFC 3581: record where the request really came from in the top Via."""
    values = request.headers.get_all("Via")
    first, *rest = split_values(values[0])
    via = Via.parse(first)
    host, port = source
    if via.has_rport:
        via.params["received"] = host
        via.params["rport"] = str(port)
    elif via.host != host:
        via.params["received"] = host
    request.headers.replace_first("Via", ", ".join([str(via), *rest]))
