"""NOTIFYs leave from the edge that holds the phone's registration.

A phone behind NAT (and any phone on TCP) accepts packets only on the path it opened to the SIP
edge: a NOTIFY from a Celery worker's random port never reaches it. So each edge records, per
device it registers, that it holds the binding (in Redis, expiring with the binding); the worker
that sends a batch of commands hands the NOTIFYs of those devices to their edge over a Redis list
and waits for the outcomes while it sends the rest itself (an edge that does not take its job is
found out after that). Anything that goes wrong on the way (no Redis, edge gone, edge silent) falls
back to the worker sending: a phone may then get a NOTIFY twice, which check-sync tolerates, but
never none.

Keys (all expire, under the cache's KEY_PREFIX): ``sip-edge:binding:<device id>`` = edge instance;
``sip-edge:alive:<instance>`` refreshed by the edge; ``sip-edge:inbox:<instance>`` jobs;
``sip-edge:reply:<random>`` answers (first ``accepted``, then the outcomes).

The channel is the Redis of ``CACHE_URL`` (already shared by every process for lockouts); with the
embedded defaults (no Redis) there is no relay and workers send everything themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import redis
from django.conf import settings

from gateway.sip.notify import NotifyOutcome, NotifyTarget, notify_many, send_notifies
from gateway.sip.transport import SipEndpoint

log = logging.getLogger(__name__)

PREFIX = "sip-edge"
ALIVE_SECONDS = 15  # an edge refreshes its mark every third of this
ACCEPT_SECONDS = 3.0  # how long a worker waits for an edge to take a job before sending itself
BINDING_GRACE_SECONDS = 30


def new_instance() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@functools.cache
def _client(url: str) -> redis.Redis:
    # No read timeout: BLPOP waits longer than any sensible one, by design.
    return redis.Redis.from_url(url, socket_connect_timeout=2)


def client() -> redis.Redis | None:
    url = settings.CACHE_URL
    return _client(url) if url.startswith(("redis://", "rediss://", "unix://")) else None


def _key(*parts: object) -> str:
    # Under the cache's KEY_PREFIX, like everything else the processes share in that Redis.
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    return ":".join(str(part) for part in (prefix, PREFIX, *parts) if part != "")


def _binding(device_id: int) -> str:
    return _key("binding", device_id)


def _alive(instance: str) -> str:
    return _key("alive", instance)


def _inbox(instance: str) -> str:
    return _key("inbox", instance)


# --- edge side ------------------------------------------------------------------------------------


def bindings_record(*, instance: str, bindings: list[tuple[int, int]]) -> None:
    """This edge holds these devices' bindings, ``(device id, seconds)``, until they expire or
    another edge takes them; 0 seconds: it holds that one no more. One round trip for the lot."""
    r = client()
    if r is None or not bindings:
        return
    try:
        with r.pipeline(transaction=False) as pipe:
            for device_id, expires_in in bindings:
                if expires_in > 0:
                    pipe.set(_binding(device_id), instance, ex=expires_in + BINDING_GRACE_SECONDS)
                else:
                    pipe.delete(_binding(device_id))
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("relay: cannot record %d bindings: %s", len(bindings), exc)


class EdgeRelay:
    """The edge's half: mark itself alive, take jobs from its inbox, send them from its endpoint."""

    def __init__(self, endpoint: SipEndpoint, *, instance: str, redis_client: redis.Redis) -> None:
        self.endpoint = endpoint
        self.instance = instance
        self.redis = redis_client
        self.jobs = 0
        self._tasks: set[asyncio.Task] = set()

    async def run(self, stop: asyncio.Event) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(stop))
        try:
            while not stop.is_set():
                try:
                    item = await asyncio.to_thread(self.redis.blpop, [_inbox(self.instance)], 1)
                except redis.RedisError as exc:
                    log.warning("relay: inbox unavailable: %s", exc)
                    await asyncio.sleep(1)
                    continue
                if item is not None and item[1]:
                    task = asyncio.create_task(self._serve(item[1]))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        finally:
            heartbeat.cancel()
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=self.endpoint.timers.timer_f + 1)
            await asyncio.to_thread(self._leave)

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.redis.set, _alive(self.instance), "1", ex=ALIVE_SECONDS)
            except redis.RedisError as exc:
                log.warning("relay: cannot mark this edge alive: %s", exc)
            await asyncio.sleep(ALIVE_SECONDS / 3)

    def wake(self) -> None:
        """Unblock the inbox wait at once (shutdown): an empty job is skipped."""
        with contextlib.suppress(redis.RedisError):
            self.redis.rpush(_inbox(self.instance), b"")

    def _leave(self) -> None:
        with contextlib.suppress(redis.RedisError):  # it expires anyway
            self.redis.delete(_alive(self.instance))

    async def _serve(self, raw: bytes) -> None:
        try:
            job = json.loads(raw)
            reply = job["reply"]
            targets = [
                NotifyTarget(key, contact, transport, tuple(source) if source else None)
                for key, contact, transport, source, _ in job["targets"]
            ]
            events = {item[0]: item[4] for item in job["targets"]}
            concurrency = int(job.get("concurrency") or 200)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("relay: dropped a malformed job: %s", exc)
            return
        await asyncio.to_thread(self._reply, reply, [{"accepted": True}])
        self.jobs += 1
        outcomes = await send_notifies(
            targets, lambda target: events[target.key], endpoint=self.endpoint, concurrency=concurrency
        )
        await asyncio.to_thread(self._reply, reply, [{"outcomes": [_outcome_json(o) for o in outcomes]}])

    def _reply(self, key: str, items: list[dict]) -> None:
        try:
            with self.redis.pipeline() as pipe:
                pipe.rpush(key, *(json.dumps(item) for item in items))
                pipe.expire(key, 120)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("relay: cannot answer %s: %s", key, exc)


def _outcome_json(outcome: NotifyOutcome) -> list:
    return [outcome.key, outcome.status, outcome.reason, outcome.outcome, outcome.permanent, outcome.retransmissions]


# --- worker side ----------------------------------------------------------------------------------


def notify_via_edges(
    targets: Sequence[NotifyTarget],
    event_for: Callable[[NotifyTarget], str],
    *,
    devices: dict[object, int],
    **notify_many_options,
) -> list[NotifyOutcome]:
    """``notify_many`` with the NOTIFY of each device whose binding a live edge holds sent by that
    edge; ``devices`` maps a target's key to its device id. Outcomes in target order. Every edge
    gets its job at once and they all send while this worker sends the rest: a batch takes as long
    as its slowest phone, not the sum of its edges' slowest phones."""
    timer_f = 64 * notify_many_options.get("t1", 0.5)
    concurrency = notify_many_options.get("concurrency") or 200
    jobs = [
        job
        for instance, batch in _edges_of(targets, devices).items()
        if (job := _EdgeJob.post(instance, batch, event_for, concurrency)) is not None
    ]
    posted = {target.key for job in jobs for target in job.batch}
    outcomes: dict[object, NotifyOutcome] = {}
    if rest := [target for target in targets if target.key not in posted]:
        outcomes.update((o.key, o) for o in notify_many(_sent_from_here(rest), event_for, **notify_many_options))
    # One deadline for every edge: each had the whole batch's time to send, and a silent one must
    # not push the others' replies (kept 120 s) past their expiry.
    deadline = time.monotonic() + timer_f + 10
    for job in jobs:
        outcomes.update(job.outcomes(deadline=deadline))
    if left := [target for target in targets if target.key not in outcomes]:  # edges that failed us
        outcomes.update((o.key, o) for o in notify_many(_sent_from_here(left), event_for, **notify_many_options))
    return [outcomes[target.key] for target in targets]


def _sent_from_here(targets: list[NotifyTarget]) -> list[NotifyTarget]:
    """The targets as this worker sends to them itself. Over TCP only the phone's edge holds the
    connection its REGISTER came on, from a port of the phone's own where nothing listens: a new
    connection goes to the host and port the Contact names (RFC 3261 §18.1.1). UDP keeps the
    source address, which is how NOTIFYs get back through NAT."""
    return [replace(target, source=None) if target.transport.lower() != "udp" else target for target in targets]


def _edges_of(targets: Sequence[NotifyTarget], devices: dict[object, int]) -> dict[str, list[NotifyTarget]]:
    r = client()
    if r is None or not targets:
        return {}
    try:
        holders = r.mget([_binding(devices[target.key]) for target in targets])
        instances = {h.decode() for h in holders if h}
        alive = dict(zip(instances, r.mget([_alive(i) for i in instances]), strict=True)) if instances else {}
    except redis.RedisError as exc:
        log.warning("relay: Redis unavailable, sending every NOTIFY from this worker: %s", exc)
        return {}
    by_edge: dict[str, list[NotifyTarget]] = {}
    for target, holder in zip(targets, holders, strict=True):
        if holder and alive.get(holder.decode()):
            by_edge.setdefault(holder.decode(), []).append(target)
    return by_edge


class _EdgeJob:
    """A batch of NOTIFYs handed to one edge: posted to its inbox, then its outcomes awaited."""

    def __init__(self, instance: str, batch: list[NotifyTarget], payload: str, reply: str) -> None:
        self.instance = instance
        self.batch = batch
        self.payload = payload
        self.reply = reply
        self.accept_by = time.monotonic() + ACCEPT_SECONDS

    @classmethod
    def post(
        cls, instance: str, batch: list[NotifyTarget], event_for: Callable[[NotifyTarget], str], concurrency: int
    ) -> _EdgeJob | None:
        """None when the job could not be posted (the caller then sends the batch itself)."""
        r = client()
        assert r is not None
        reply = _key("reply", secrets.token_hex(12))
        try:
            events = [event_for(target) for target in batch]
        except Exception:
            log.exception("relay: event lookup failed; the worker sends this batch itself")
            return None
        payload = json.dumps(
            {
                "reply": reply,
                "concurrency": concurrency,
                "targets": [
                    [t.key, t.contact_uri, t.transport, list(t.source) if t.source else None, event]
                    for t, event in zip(batch, events, strict=True)
                ],
            }
        )
        try:
            r.rpush(_inbox(instance), payload)
        except redis.RedisError as exc:
            log.warning("relay: lost edge %s: %s", instance, exc)
            return None
        return cls(instance, batch, payload, reply)

    def outcomes(self, *, deadline: float) -> dict[object, NotifyOutcome]:
        """The outcomes the edge reports by `deadline` (time.monotonic()), or {} when it did not
        take the job or went silent (the caller then sends them itself)."""
        r = client()
        assert r is not None
        try:
            accepted = r.blpop([self.reply], _left(self.accept_by))
            # Not taken in time: take it back. Had the edge taken it meanwhile, its outcomes will come.
            if accepted is None and r.lrem(_inbox(self.instance), 1, self.payload):
                log.warning(
                    "relay: edge %s did not take %d NOTIFYs; sending them from this worker",
                    self.instance,
                    len(self.batch),
                )
                return {}
            item = r.blpop([self.reply], _left(deadline))
            if item is not None and accepted is None and "accepted" in json.loads(item[1]):
                item = r.blpop([self.reply], _left(deadline))
        except redis.RedisError as exc:
            log.warning("relay: lost edge %s: %s", self.instance, exc)
            return {}
        if item is None:
            log.warning(
                "relay: edge %s went silent on %d NOTIFYs; sending them from this worker",
                self.instance,
                len(self.batch),
            )
            return {}
        outcomes = [NotifyOutcome(*values) for values in json.loads(item[1])["outcomes"]]
        known = {target.key for target in self.batch}  # keys survive JSON as they were (command ids)
        return {o.key: o for o in outcomes if o.key in known}


def _left(deadline: float) -> float:
    """Seconds to `deadline`, for BLPOP: never 0, which would wait for ever."""
    return max(deadline - time.monotonic(), 0.01)
