"""In-process fake phones on 127.0.0.1 that record what they receive and answer as scripted."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from gateway.sip.message import Request, Response, make_response
from gateway.sip.notify import NotifyOutcome
from gateway.sip.parser import StreamFramer, parse_message

# Given the request and how many copies of it arrived so far (1 = first), what to send back.
Script = Callable[[Request, int], list[Response]]


def answer(status: int, *, after: int = 1, provisional: int | None = None) -> Script:
    """Stay silent until copy number ``after``, then answer ``status`` (and a 1xx first, if asked)."""

    def script(request: Request, copy: int) -> list[Response]:
        out: list[Response] = []
        if provisional is not None and copy == 1:
            out.append(make_response(request, provisional))
        if copy >= after:
            out.append(make_response(request, status, to_tag="peer"))
        return out

    return script


def silent(request: Request, copy: int) -> list[Response]:
    return []


@dataclass
class Arrival:
    at: float
    request: Request


@dataclass
class FakeUdpPhone(asyncio.DatagramProtocol):
    script: Script = silent
    arrivals: list[Arrival] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        message = parse_message(data)
        assert isinstance(message, Request)
        loop = asyncio.get_running_loop()
        self.arrivals.append(Arrival(loop.time(), message))
        copies = sum(1 for a in self.arrivals if a.request.via.branch == message.via.branch)
        for response in self.script(message, copies):
            assert self.transport is not None
            self.transport.sendto(response.to_bytes(), addr)

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    def gaps(self) -> list[float]:
        times = [a.at for a in self.arrivals]
        return [b - a for a, b in itertools.pairwise(times)]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def udp_phone(script: Script = silent) -> FakeUdpPhone:
    loop = asyncio.get_running_loop()
    _, phone = await loop.create_datagram_endpoint(lambda: FakeUdpPhone(script), local_addr=("127.0.0.1", 0))
    return phone


class FakeTcpPhone:
    """A TCP listener whose every connection answers per ``script``."""

    def __init__(self, script: Script = silent) -> None:
        self.script = script
        self.requests: list[Request] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> FakeTcpPhone:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    @property
    def address(self) -> tuple[str, int]:
        assert self.server is not None
        host, port = self.server.sockets[0].getsockname()[:2]
        return host, port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        framer = StreamFramer()
        try:
            while data := await reader.read(65536):
                for message in framer.feed(data):
                    assert isinstance(message, Request)
                    self.requests.append(message)
                    copies = sum(1 for r in self.requests if r.via.branch == message.via.branch)
                    for response in self.script(message, copies):
                        writer.write(response.to_bytes())
        finally:
            writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def async_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh event loop (no pytest-asyncio in the venv)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper


def settled(outcome: NotifyOutcome) -> NotifyOutcome:
    """The outcome without its retransmission count, which depends on how loaded the machine is."""
    return dataclasses.replace(outcome, retransmissions=0)
