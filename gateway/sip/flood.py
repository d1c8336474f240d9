"""Flood control for one SIP endpoint: a token bucket per source IP, in process memory.

Per-process on purpose: it protects this process's event loop and database pool from one noisy
source, so it needs no shared state (several edges each protect themselves). The brute-force
limits that must hold across processes (verification codes) live in Redis, in the services.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class TokenBuckets:
    """``allow(ip)``: ``rate`` packets per second on average, bursts up to ``burst``.

    At most ``max_sources`` buckets are kept; past that the idle ones are forgotten, and if every
    one is busy (a spoofed-source flood) the table starts over: forgetting gives a source a full
    bucket again, which is the cheap failure, never an unbounded table.
    """

    def __init__(
        self,
        *,
        rate: float,
        burst: float,
        max_sources: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self.max_sources = max_sources
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # ip -> (tokens, last refill)
        self._throttled: set[str] = set()  # sources told about in the log, until they calm down

    def allow(self, ip: str) -> bool:
        now = self._clock()
        tokens, last = self._buckets.get(ip, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self._buckets[ip] = (tokens, now)
            if ip not in self._throttled:
                self._throttled.add(ip)
                log.warning("flood control: dropping packets from %s (over %g/s)", ip, self.rate)
            return False
        if len(self._buckets) >= self.max_sources and ip not in self._buckets:
            self._prune(now)
        self._buckets[ip] = (tokens - 1, now)
        if ip in self._throttled and tokens >= self.burst / 2:
            self._throttled.discard(ip)
        return True

    def __len__(self) -> int:
        return len(self._buckets)

    def _prune(self, now: float) -> None:
        # A bucket that has refilled completely holds nothing worth remembering.
        full_after = self.burst / self.rate
        self._buckets = {ip: b for ip, b in self._buckets.items() if now - b[1] < full_after}
        if len(self._buckets) >= self.max_sources:
            self._buckets.clear()
        self._throttled &= self._buckets.keys()
