"""Waiting for what another process or thread does (a worker, the edge, a phone): the tests' one
polling loop, so that every wait fails the same way, naming what it waited for."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    *,
    what: str,
    timeout: float = 10.0,
    interval: float = 0.05,
    details: Callable[[], str] | None = None,
    give_up: Callable[[], str | None] | None = None,
) -> T:
    """The predicate's first truthy result.

    Fails after `timeout` seconds, or at once when `give_up()` gives a reason (say, the process that
    would have done it has ended); `details()` is read at that moment and appended to the failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        if give_up is not None and (reason := give_up()):
            raise AssertionError(_with_details(f"{reason} before {what}", details))
        time.sleep(interval)
    raise AssertionError(_with_details(f"timed out waiting for {what}", details))


def _with_details(message: str, details: Callable[[], str] | None) -> str:
    return f"{message}\n{details()}" if details is not None else message


def wait_for_lock_waiters(count: int, *, what: str, timeout: float = 10.0) -> None:
    """Until `count` sessions of the test database wait on a lock (a row this test holds, say)."""
    from django.db import connection

    def queued() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # else a transaction sees one frozen view
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            return cursor.fetchone()[0] >= count

    wait_until(queued, what=what, timeout=timeout, interval=0.02)
