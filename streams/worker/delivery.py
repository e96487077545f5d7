"""faust's per-record delivery to the streams, without four asyncio tasks a record.

faust's consumer hands every fetched record to the streams with
``await self.wait_first(callback(record), self.suspend_flow.wait())``: the callback puts the record on
its stream's queue, and the race lets a rebalance (flow suspended) or a stop cut short a put that waits
on a full queue. mode's ``wait_first`` makes a task for each of the two and for the service's stopped
and crashed events, awaits ``asyncio.wait``, and cancels the losers: ~70 µs a record, against ~1 µs for
the put itself. In a null-model worker that was a large share of the event loop's time (README, issue 12).

:class:`PromptDelivery` steps the first coroutine once before racing it. When it finishes in that step
(the queue had room: nearly every record), it won the race, as it would have with the tasks, and no task
is made; otherwise the rest of it runs in the race exactly as before. A stopped or crashed service, a
timeout, or a first argument that is not a coroutine take mode's own path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from functools import partial
from typing import Any

from mode.services import WaitResults


async def _rest_of(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    """Run ``coro``, which has taken its first step and yielded ``yielded`` (a future, or None for a bare yield),
    to its end as a task would: resumed with what it waited on, or with this task's cancellation thrown in."""
    while True:
        try:
            if yielded is None:
                await asyncio.sleep(0)
            else:
                yielded._asyncio_future_blocking = False
                await yielded
        except BaseException as outcome:  # noqa: BLE001 - its error or our cancellation is the coroutine's to handle
            step = partial(coro.throw, outcome)
        else:
            step = partial(coro.send, None)
        try:
            yielded = step()
        except StopIteration as done:
            return done.value


class PromptDelivery:
    """A mode service mixin (faust's consumer) whose ``wait_first`` does not make tasks for a first coroutine that
    finishes without waiting."""

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        first = coros[0] if coros else None
        if (timeout is not None or not asyncio.iscoroutine(first)
                or self._stopped.is_set() or self._crashed.is_set()):  # type: ignore[attr-defined]
            return await super().wait_first(*coros, timeout=timeout)  # type: ignore[misc]
        try:
            yielded = first.send(None)
        except StopIteration as done:
            _close(coros[1:])
            return WaitResults([first], [done.value], False)
        except BaseException:
            _close(coros[1:])
            raise
        return await super().wait_first(_rest_of(first, yielded), *coros[1:])  # type: ignore[misc]


def _close(coros: tuple[Any, ...]) -> None:
    """Close the race's other coroutines, never started, so they are not reported as never awaited."""
    for coro in coros:
        if asyncio.iscoroutine(coro):
            coro.close()


def prompt_consumer(consumer_class: type) -> type:
    """``consumer_class`` (a faust transport's consumer) with :class:`PromptDelivery`."""
    return type(f"Prompt{consumer_class.__name__}", (PromptDelivery, consumer_class), {})
