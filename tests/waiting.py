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
