"""The SIP edge: what phones register with and dial feature codes into.

asyncio glue between the SIP core (``gateway.sip``) and the phone services
(``gateway.phone_services``): it reads SIP, applies the SIP rules (expiry bounds, 423, Warning
headers, the call that answers a feature code) and runs every database call on a small thread
pool, never on the event loop. It keeps no state another process needs: bindings are written to
the devices' rows, so several edges can serve the same phones.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import logging
import re
import threading
import urllib.parse
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime

import redis
from django.db import close_old_connections, connections

from gateway import phone_services
from gateway.phone_services import Binding, PhoneRefused, Registration
from gateway.relay import EdgeRelay, bindings_record, new_instance
from gateway.sip.flood import TokenBuckets
from gateway.sip.message import NameAddr, SipUri, split_values
from gateway.sip.pager import send_text_message
from gateway.sip.sdp import inactive_answer
from gateway.sip.transaction import DEFAULT_TIMERS, Timers, TransactionTimeout
from gateway.sip.transport import IncomingRequest, SipEndpoint, TransportError

log = logging.getLogger(__name__)

MIN_EXPIRES = 60  # below this a REGISTER gets 423 Interval Too Brief (RFC 3261 §10.3 step 7)
MAX_EXPIRES = 3600
DEFAULT_EXPIRES = 3600  # when the phone names none
ENROLL_PREFIX = "*55*"
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER"
# Methods SIP defines (RFC 3261 and its extensions): one of these we do not serve is 405, any
# other method is one we do not know, 501 (§21.5.2).
SIP_METHODS = frozenset(
    {
        "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER",
        "PRACK", "SUBSCRIBE", "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE",
    }
)
_MAC_USER = re.compile(r"[0-9A-Fa-f]{12}")


class _Reject(Exception):
    def __init__(self, status: int, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.headers = headers or []


class SipEdge:
    """One edge process's SIP side. ``start``/``stop``; ``stats`` for the logs and the tests."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 5060,
        advertised_host: str | None = None,
        tcp: bool = True,
        timers: Timers = DEFAULT_TIMERS,
        sign_in_code: str = "*70*",
        sign_out_code: str = "*71*",
        flood: TokenBuckets | None = None,
        db_threads: int = 8,
        max_pending: int = 1000,
        relay: redis.Redis | None = None,
    ) -> None:
        self.sign_in_code = sign_in_code
        self.sign_out_code = sign_out_code
        self.max_pending = max_pending
        self.endpoint = SipEndpoint(
            host=host,
            port=port,
            advertised_host=advertised_host,
            timers=timers,
            handler=self.handle,
            tcp_listen=tcp,
            # A phone's TCP connection is how we reach it: keep it while its binding can live.
            tcp_idle_timeout=MAX_EXPIRES + 120,
            admit=flood.allow if flood is not None else None,
        )
        self.stopping = False
        self.stats: dict[str, int] = dict.fromkeys(
            ("registered", "unregistered", "register_refused", "calls_answered", "refused", "overloaded"), 0
        )
        self._pending = 0
        self._db_threads = db_threads
        self._pool: ThreadPoolExecutor | None = None
        self._registrations: _Batcher | None = None
        # With Redis, workers hand this edge the NOTIFYs of the phones it registered (gateway.relay).
        self.instance = new_instance()
        self.relay = EdgeRelay(self.endpoint, instance=self.instance, redis_client=relay) if relay else None
        self._relay_stop = asyncio.Event()
        self._relay_task: asyncio.Task | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.endpoint.address

    async def start(self) -> None:
        self._pool = ThreadPoolExecutor(self._db_threads, thread_name_prefix="sip-edge-db")
        self._registrations = _Batcher(lambda bindings: self._db(_store, bindings, self.instance))
        await self.endpoint.start()
        if self.relay is not None:
            self._relay_task = asyncio.create_task(self.relay.run(self._relay_stop))

    async def stop(self, *, drain: float = 5.0) -> None:
        """Refuse new work, let calls in progress end (up to ``drain`` seconds), then close."""
        self.stopping = True
        if self._relay_task is not None:
            self._relay_stop.set()
            await asyncio.to_thread(self.relay.wake)
            await self._relay_task
        tasks = set(self.endpoint._tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=drain)
        await self.endpoint.close()
        if self._registrations is not None:
            await self._registrations.close()
        if self._pool is not None:
            await asyncio.to_thread(_close_pool, self._pool, self._db_threads)
            self._pool = None

    async def _db(self, fn: Callable, /, *args, **kwargs):
        """Run a service on the pool: blocking ORM calls never stall the loop."""
        assert self._pool is not None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(_in_thread, fn, args, kwargs))

    async def _bind(self, service: Callable, /, **kwargs):
        return await self._db(_bound, service, self.instance, **kwargs)

    # -- dispatch --------------------------------------------------------------------------------

    async def handle(self, incoming: IncomingRequest) -> None:
        method = incoming.request.method
        if method == "BYE":
            # Requests within a dialog never get here (the transport answers them): this BYE
            # names a call that does not exist (§15.1.2).
            incoming.respond(481)
            return
        if method not in ("REGISTER", "INVITE", "OPTIONS"):
            incoming.respond(405 if method in SIP_METHODS else 501, headers=[("Allow", ALLOW)])
            return
        if required := [tag for value in incoming.request.headers.get_all("Require") for tag in split_values(value)]:
            # §8.2.2.3: we support no extension, so a request that requires one is refused naming them.
            incoming.respond(420, headers=[("Unsupported", ", ".join(required))])
            return
        if method == "OPTIONS":  # phones' keepalives and monitoring
            incoming.respond(200, headers=[("Allow", ALLOW), ("Accept", "application/sdp")])
            return
        if self.stopping or self._pending >= self.max_pending:
            # §21.5.4: come back later (a phone then tries again, or another edge).
            self.stats["overloaded"] += 1
            incoming.respond(503, headers=[("Retry-After", "5")])
            return
        self._pending += 1
        try:
            if method == "REGISTER":
                await self._register(incoming)
            else:
                await self._invite(incoming)
        except _Reject as reject:
            incoming.respond(reject.status, headers=reject.headers)
        finally:
            self._pending -= 1

    # -- REGISTER --------------------------------------------------------------------------------

    async def _register(self, incoming: IncomingRequest) -> None:
        request = incoming.request
        sip_user = _user_of(request.headers.get("To"))  # the address of record is in To (§10.2)
        if sip_user is None or not _MAC_USER.fullmatch(sip_user):
            self.stats["register_refused"] += 1
            raise _Reject(404)
        header_expires = _expires_value(request.headers.get("Expires"))
        values = [v for value in request.headers.get_all("Contact") for v in split_values(value)]
        if "*" in values:
            # §10.2.2: "*" only alone and only with Expires: 0.
            if len(values) > 1 or header_expires != 0:
                raise _Reject(400)
            result = await self._bind(phone_services.registration_remove, sip_user=sip_user, contact_uri=None)
        elif not values:
            result = await self._db(phone_services.registration_current, sip_user=sip_user)
        else:
            try:
                contact = NameAddr.parse(values[0])
                SipUri.parse(contact.uri)
            except ValueError:
                raise _Reject(400) from None
            requested = _expires_value(contact.params.get("expires"))
            if requested is None:
                requested = DEFAULT_EXPIRES if header_expires is None else header_expires
            if len(contact.uri) > 255:
                raise _Reject(400)
            if requested == 0:
                result = await self._bind(
                    phone_services.registration_remove, sip_user=sip_user, contact_uri=contact.uri
                )
            elif requested < MIN_EXPIRES:
                raise _Reject(423, [("Min-Expires", str(MIN_EXPIRES))])
            else:
                host, port = incoming.source
                assert self._registrations is not None
                result = await self._registrations.submit(
                    Binding(
                        sip_user=sip_user,
                        contact_uri=contact.uri,
                        transport=incoming.transport,
                        source=f"{host}:{port}",
                        user_agent=request.headers.get("User-Agent") or "",
                        expires_in=min(requested, MAX_EXPIRES),
                    )
                )
        if result is None:  # unknown MAC or a tenant with the gateway off: no detail
            self.stats["register_refused"] += 1
            raise _Reject(404)
        headers = [("Date", email.utils.format_datetime(datetime.now(UTC), usegmt=True))]
        if result.expires_in:
            self.stats["registered"] += 1
            headers.append(("Contact", f"<{result.contact_uri}>;expires={result.expires_in}"))
            headers.append(("Expires", str(result.expires_in)))  # for phones that read only this
        else:
            self.stats["unregistered"] += 1
        incoming.respond(200, headers=headers)

    # -- INVITE: feature codes -------------------------------------------------------------------

    async def _invite(self, incoming: IncomingRequest) -> None:
        request = incoming.request
        dialed = _dialed(request.uri)
        sip_user = _user_of(request.headers.get("From")) or ""
        source_ip = incoming.source[0]
        # Whatever follows *55* is a code to check: a mistyped one is a wrong code (403, and it counts
        # toward the lockout), not a number we do not serve.
        if dialed is not None and dialed.startswith(ENROLL_PREFIX):
            result = await self._db(
                phone_services.phone_enroll, sip_user=sip_user, code=dialed[len(ENROLL_PREFIX) :], source=source_ip
            )
            if not result.ok:
                self._refuse(incoming, result.reason)
                return
            log.info("enrolled %s from %s", sip_user, source_ip)
            await self._answer_and_end(incoming)
            await self._db(phone_services.phone_check_sync, device_id=result.device_id)
        elif dialed == self.sign_in_code:
            try:
                sign_in = await self._db(phone_services.phone_sign_in_start, sip_user=sip_user, source_ip=source_ip)
            except PhoneRefused as refused:
                self._refuse(incoming, str(refused))
                return
            log.info("sign-in started for %s", sip_user)
            if await self._answer_and_end(incoming):
                await self._show(incoming, sip_user, sign_in.text)
        elif dialed == self.sign_out_code:
            try:
                await self._db(phone_services.phone_sign_out, sip_user=sip_user, source_ip=source_ip)
            except PhoneRefused as refused:
                self._refuse(incoming, str(refused))
                return
            log.info("signed out %s", sip_user)
            await self._answer_and_end(incoming)
        else:
            raise _Reject(404)  # we are not a PBX

    def _refuse(self, incoming: IncomingRequest, reason: str) -> None:
        self.stats["refused"] += 1
        log.info("refused %s from %s: %s", incoming.request.uri, incoming.source[0], reason)
        if not incoming.final_sent:
            incoming.respond(403, headers=[("Warning", warning(self.endpoint.advertised_host, reason))])

    async def _answer_and_end(self, incoming: IncomingRequest) -> bool:
        """200 OK with an inactive SDP, the ACK, our BYE: the phone sees the call connect and end.
        False when the phone gave up first (CANCEL) or the call could not be set up."""
        if incoming.final_sent:
            return False
        request = incoming.request
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        offer = request.body if content_type == "application/sdp" else b""
        try:
            call = self.endpoint.answer(incoming, body=inactive_answer(offer, host=self.endpoint.advertised_host))
        except ValueError:
            incoming.respond(400)
            return False
        self.stats["calls_answered"] += 1
        try:
            await call.hang_up()
        except (TransactionTimeout, TransportError) as exc:
            log.info("BYE to %s went unanswered: %s", call.dialog.remote_target, exc)
        return True

    async def _show(self, incoming: IncomingRequest, sip_user: str, text: str) -> None:
        """Put ``text`` on the phone's screen: an out-of-dialog MESSAGE (RFC 3428) to the contact
        of its call, on the path the call came from. Phones show these as a text message on the
        idle screen (Yealink, Poly, Snom, Cisco MPP with text messages on), where a call's display
        name is gone as soon as the call ends."""
        target = incoming.request.contacts[0].uri
        try:
            response = await send_text_message(
                self.endpoint,
                target,
                text,
                destination=incoming.source,
                transport=incoming.transport,
                aor=f"sip:{sip_user}@{self.endpoint.advertised_host}",
                from_display="Sign in",
            )
        except (ValueError, TransactionTimeout, TransportError) as exc:
            log.info("MESSAGE to %s not delivered: %s", target, exc)
            return
        log.info("MESSAGE to %s: %s %s", target, response.status, response.reason)


def _close_pool(pool: ThreadPoolExecutor, threads: int) -> None:
    """Close every pool thread's database connection, then the pool: one job per thread, held at
    a barrier so that no thread takes two (Django connections belong to their thread)."""
    barrier = threading.Barrier(threads)

    def close() -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=5)
        connections.close_all()

    futures.wait([pool.submit(close) for _ in range(threads)])
    pool.shutdown(wait=True)


def _in_thread(fn: Callable, args: tuple, kwargs: dict):
    # What Django does around each request: drop a connection that is broken or past its age.
    close_old_connections()
    return fn(*args, **kwargs)


def _bound(service: Callable, instance: str, **kwargs):
    """A registration service, then the note that this edge holds (or no longer holds) the binding."""
    result = service(**kwargs)
    if result is not None:
        bindings_record(instance=instance, bindings=[(result.device_id, result.expires_in)])
    return result


def _store(bindings: list[Binding], instance: str) -> list[Registration | None]:
    results = phone_services.registrations_store(bindings=bindings)
    bindings_record(instance=instance, bindings=[(r.device_id, r.expires_in) for r in results if r is not None])
    return results


class _Batcher:
    """REGISTERs that arrive together are stored together: each writer takes whatever is waiting
    (up to ``size``) as one database job, so under load a few statements carry hundreds of
    REGISTERs, and alone a REGISTER waits for nothing."""

    def __init__(self, write: Callable, *, size: int = 500, writers: int = 2) -> None:
        self._write = write
        self._size = size
        self._queue: asyncio.Queue[tuple[Binding, asyncio.Future]] = asyncio.Queue()
        self._writers = [asyncio.create_task(self._run()) for _ in range(writers)]

    async def submit(self, binding: Binding) -> Registration | None:
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((binding, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                results = await self._write([binding for binding, _ in batch])
            except Exception as exc:
                log.exception("storing %d registrations failed", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def close(self) -> None:
        for writer in self._writers:
            writer.cancel()
        await asyncio.gather(*self._writers, return_exceptions=True)


def _user_of(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return NameAddr.parse(value).sip_uri.user
    except ValueError:
        return None


def _dialed(uri: str) -> str | None:
    """The number in the Request-URI's user part, unescaped (`%2A55%2A` is `*55*`), without the
    `#` some phones send as their dial key."""
    try:
        user = SipUri.parse(uri).user
    except ValueError:
        return None
    if not user:
        return None
    return urllib.parse.unquote(user.split(";")[0]).rstrip("#")


def _expires_value(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise _Reject(400)
    return int(text)


def warning(agent: str, text: str) -> str:
    """A Warning header value (RFC 3261 §20.43): 399 = miscellaneous, the text in quotes."""
    clean = "".join(c for c in text if c >= " " and c not in '"\\')[:200]
    return f'399 {agent} "{clean}"'


async def run(edge: SipEdge, *, stop: asyncio.Event, stats_every: float = 60.0) -> None:
    """Serve until ``stop`` is set; log the counters every ``stats_every`` seconds."""
    await edge.start()
    log.info("SIP edge listening on %s:%s", *edge.address)
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), stats_every)
            log.info("SIP edge: %s %s", edge.stats, asdict(edge.endpoint.stats))
    finally:
        await edge.stop()
        log.info("SIP edge stopped")
