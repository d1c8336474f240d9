"""Dialogs we answer as UAS (RFC 3261 §12, §13.3.1.4, §15): the state an INVITE creates, the
2xx kept alive until its ACK, and the BYE that ends the call.

``Dialog`` is plain data with the rules of §12.1.1 and §12.2.1.1; ``ServerCall`` drives one
answered call on a ``SipEndpoint`` (``SipEndpoint.answer`` makes it).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .message import Headers, NameAddr, Request, Response, SipUri, split_values
from .transaction import Timers

if TYPE_CHECKING:
    from .transport import Address, SipEndpoint

log = logging.getLogger(__name__)

DialogId = tuple[str, str, str]  # (Call-ID, local tag, remote tag), §12


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str
    remote_uri: str
    remote_target: str
    route_set: list[str] = field(default_factory=list)
    remote_cseq: int = 0
    local_cseq: int = 0

    @classmethod
    def from_invite(cls, request: Request, *, local_tag: str) -> Dialog:
        """UAS side of §12.1.1. Raises ValueError when the INVITE cannot found a dialog
        (no single SIP Contact to send the BYE to)."""
        contacts = request.contacts
        if len(contacts) != 1:
            raise ValueError("an INVITE needs exactly one Contact (§8.1.1.8)")
        remote_target = contacts[0].uri
        SipUri.parse(remote_target)  # a tel: or other URI cannot take a BYE
        routes = [v for value in request.headers.get_all("Record-Route") for v in split_values(value)]
        for route in routes:
            NameAddr.parse(route)
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_.tag or "",
            local_uri=request.to.uri,
            remote_uri=request.from_.uri,
            remote_target=remote_target,
            route_set=routes,
            remote_cseq=request.cseq.number,
            # §12.1.1 leaves the local sequence empty; §8.1.1.5 wants a start below 2**31.
            local_cseq=secrets.randbelow(2**16),
        )

    @property
    def id(self) -> DialogId:
        return self.call_id, self.local_tag, self.remote_tag

    def next_request(self, method: str, *, via: str, headers: list[tuple[str, str]] = (), body: bytes = b"") -> Request:
        """A request within the dialog, §12.2.1.1: CSeq one up, tags swapped, routed by the route set."""
        self.local_cseq += 1
        request_uri, routes = self._routing()
        out = Headers(
            [
                ("Via", via),
                ("Max-Forwards", "70"),
                *(("Route", route) for route in routes),
                ("From", f"<{self.local_uri}>;tag={self.local_tag}"),
                ("To", f"<{self.remote_uri}>" + (f";tag={self.remote_tag}" if self.remote_tag else "")),
                ("Call-ID", self.call_id),
                ("CSeq", f"{self.local_cseq} {method}"),
                *headers,
            ]
        )
        return Request(method=method, uri=request_uri, headers=out, body=body)

    def _routing(self) -> tuple[str, list[str]]:
        if not self.route_set:
            return _request_uri(self.remote_target), []
        first = NameAddr.parse(self.route_set[0])
        if "lr" in first.sip_uri.params:
            return _request_uri(self.remote_target), list(self.route_set)
        # A strict router (RFC 2543) takes the request in its Request-URI; the target goes last.
        return _request_uri(first.uri), [*self.route_set[1:], f"<{self.remote_target}>"]

    def next_hop(self) -> tuple[str, int | None, str]:
        """(host, port or None, transport) of the first hop: the top route, else the remote target."""
        uri = NameAddr.parse(self.route_set[0]).sip_uri if self.route_set else SipUri.parse(self.remote_target)
        return uri.params.get("maddr") or uri.host, uri.port, uri.transport


def _request_uri(uri: str) -> str:
    return str(SipUri.parse(uri).without_headers())  # §19.1.5: no URI headers in a Request-URI


class ServerCall:
    """A call we answered with 2xx: the 2xx is passed to the transport again from T1 doubling to
    T2 until its ACK (§13.3.1.4), even over TCP; without an ACK within 64·T1 the dialog is ended
    with a BYE all the same. ``hang_up`` waits for the ACK (§15: no BYE before it) and sends the
    BYE through a non-INVITE client transaction. A BYE from the phone ends the call too."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        dialog: Dialog,
        response: Response,
        *,
        send: Callable[[Response], None],
        transport: str,
        peer: Address,
        timers: Timers,
        on_ended: Callable[[ServerCall], None],
    ) -> None:
        self.endpoint = endpoint
        self.dialog = dialog
        self.response = response
        self.transport = transport
        self.peer = peer
        self.timers = timers
        self.retransmissions = 0
        self.ended_by_peer = False
        self._send = send
        self._on_ended = on_ended
        self._loop = asyncio.get_running_loop()
        self._confirmed: asyncio.Future[bool] = self._loop.create_future()
        self._ended = False
        self._interval = timers.t1
        self._retransmit: asyncio.TimerHandle | None = self._loop.call_later(self._interval, self._on_retransmit)
        self._give_up = self._loop.call_later(timers.timer_f, self._on_no_ack)

    @property
    def acked(self) -> bool:
        return self._confirmed.done() and self._confirmed.result()

    @property
    def ended(self) -> bool:
        return self._ended

    async def wait_confirmed(self) -> bool:
        """True once the ACK came; False when 64·T1 passed without it or the call ended first."""
        return await asyncio.shield(self._confirmed)

    def receive_ack(self, request: Request) -> None:
        try:
            number = request.cseq.number
        except ValueError:
            return
        if number != self.dialog.remote_cseq:
            return  # the ACK of some other INVITE of this dialog (none here): not ours
        self._stop_retransmitting()
        if not self._confirmed.done():
            self._confirmed.set_result(True)

    def receive_bye(self) -> None:
        self.ended_by_peer = True
        self._end()

    async def hang_up(self) -> Response | None:
        """BYE, once the ACK came or could not come any more; its final response, or None when
        the phone hung up first. Raises TransactionTimeout or TransportError like send_request."""
        await self.wait_confirmed()
        if self._ended:
            return None
        request = self.dialog.next_request(
            "BYE", via=self.endpoint.via(self.transport), headers=[("User-Agent", self.endpoint.user_agent)]
        )
        try:
            return await self.endpoint.send_request(request, self._bye_destination(), transport=self.transport)
        finally:
            self._end()

    def close(self) -> None:
        """Forget the call without a BYE (endpoint shutdown)."""
        self._end()

    def _bye_destination(self) -> Address:
        if self.dialog.route_set:
            host, port, _ = self.dialog.next_hop()
            return host, port or 5060
        # No proxy between us: answer the phone where it spoke from (NAT, and the same TCP
        # connection), as responses go per RFC 3581, not to the private address in its Contact.
        return self.peer

    def _on_retransmit(self) -> None:
        if self._confirmed.done() or self._ended:
            return
        self._interval = min(2 * self._interval, self.timers.t2)
        self._retransmit = self._loop.call_later(self._interval, self._on_retransmit)
        self.retransmissions += 1
        try:
            self._send(self.response)
        except Exception as exc:
            log.info("call %s: cannot retransmit the 2xx: %s", self.dialog.call_id, exc)

    def _on_no_ack(self) -> None:
        self._stop_retransmitting()
        if not self._confirmed.done():
            log.info("call %s: no ACK for the 2xx within %g s", self.dialog.call_id, self.timers.timer_f)
            self._confirmed.set_result(False)

    def _stop_retransmitting(self) -> None:
        for handle in (self._retransmit, self._give_up):
            if handle is not None:
                handle.cancel()
        self._retransmit = None

    def _end(self) -> None:
        if self._ended:
            return
        self._ended = True
        self._stop_retransmitting()
        if not self._confirmed.done():
            self._confirmed.set_result(False)
        self._on_ended(self)
