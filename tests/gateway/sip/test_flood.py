"""Flood control: a token bucket per source address, bounded in memory."""

from gateway.sip.flood import TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_source_gets_its_burst_then_its_rate():
    clock = Clock()
    buckets = TokenBuckets(rate=10, burst=5, clock=clock)
    assert [buckets.allow("10.0.0.1") for _ in range(7)] == [True] * 5 + [False] * 2
    clock.now = 0.5  # five tokens back
    assert sum(buckets.allow("10.0.0.1") for _ in range(10)) == 5


def test_one_noisy_source_does_not_cost_another_anything():
    buckets = TokenBuckets(rate=1, burst=2, clock=Clock())
    for _ in range(100):
        buckets.allow("10.0.0.1")
    assert buckets.allow("10.0.0.2")


def test_the_table_stays_bounded_when_every_packet_claims_another_source():
    clock = Clock()
    buckets = TokenBuckets(rate=1, burst=2, max_sources=1000, clock=clock)
    for n in range(50_000):
        clock.now += 0.0001
        assert buckets.allow(f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}")
    assert len(buckets) <= 1000
