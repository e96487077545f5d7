"""Retry a step that must eventually succeed (a store or broker that refuses), backing off.

The data waits instead of being skipped: the step is tried again after ``FIRST_S``, then twice as
long each time up to ``MAX_S``, so a blip costs half a second and a long outage few attempts. One
policy for the scoring agent (on the event loop) and the alerting service (on a worker thread).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

log = logging.getLogger("riskpulse.retry")

FIRST_S = 0.5
MAX_S = 30.0

T = TypeVar("T")


class _Backoff:
    """The wait before each next attempt: FIRST_S, doubling, capped at MAX_S; each failure is logged."""

    def __init__(self, what: str) -> None:
        self.what, self.delay = what, FIRST_S

    def after(self, exc: Exception) -> float:
        delay, self.delay = self.delay, min(self.delay * 2, MAX_S)
        log.error("%s failed, retrying in %.1f s: %r", self.what, delay, exc)
        return delay


def retry(step: Callable[[], T], what: str) -> T:
    """``step()``'s result, calling it until it returns; sleeps the thread in between."""
    waits = _Backoff(what)
    while True:
        try:
            return step()
        except Exception as exc:  # noqa: BLE001 - any failure means "not done yet"
            time.sleep(waits.after(exc))


async def retry_async(step: Callable[[], Awaitable[T]], what: str, should_stop: Callable[[], bool] = lambda: False) -> T | None:
    """``await step()``'s result, retried like :func:`retry`; None if ``should_stop()`` after a failure."""
    waits = _Backoff(what)
    while True:
        try:
            return await step()
        except Exception as exc:  # noqa: BLE001 - any failure means "not done yet"
            delay = waits.after(exc)
            if should_stop():
                return None
            await asyncio.sleep(delay)
