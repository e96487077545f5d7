"""faust's record delivery race, without tasks for a put that does not wait (streams/worker/delivery.py)."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from mode import Service

from riskpulse.streams.worker.delivery import PromptDelivery, prompt_consumer


class Plain(Service):
    """mode's own ``wait_first``, as faust's consumer has it."""


class Prompt(PromptDelivery, Service):
    pass


def deliver(queue: asyncio.Queue, record: int, done: list[str]):
    """What faust's delivery callback does: put the record on its stream's queue (waiting while it is full)."""
    async def put() -> int:
        try:
            await queue.put(record)
            return record
        finally:
            done.append(f"put {record} ended")
    return put()


@pytest.fixture
def tasks_made(monkeypatch) -> list[object]:
    made: list[object] = []
    ensure_future = asyncio.ensure_future

    def counting(coro, *, loop=None):
        made.append(coro)
        return ensure_future(coro, loop=loop)

    monkeypatch.setattr(asyncio, "ensure_future", counting)
    return made


@pytest.mark.parametrize("service", [Plain, Prompt])
def test_a_put_with_room_wins_the_race_and_only_mode_makes_tasks_for_it(service, tasks_made) -> None:
    async def run():
        svc, queue, flow, done = service(), asyncio.Queue(maxsize=10), asyncio.Event(), []
        waits = [flow.wait() for _ in range(3)]
        results = [await svc.wait_first(deliver(queue, n, done), wait) for n, wait in enumerate(waits)]
        await asyncio.sleep(0)  # mode's cancelled losers finish
        return results, [queue.get_nowait() for _ in range(queue.qsize())], done, {inspect.getcoroutinestate(w) for w in waits}

    results, queued, done, waits = asyncio.run(run())
    assert waits == {inspect.CORO_CLOSED}  # the losing flow waits are closed, not left to warn that they were never awaited
    assert queued == [0, 1, 2] and done == ["put 0 ended", "put 1 ended", "put 2 ended"]
    assert [r.results for r in results] == [[0], [1], [2]] and not any(r.stopped for r in results)
    assert len(tasks_made) == (0 if service is Prompt else 12)  # mode: the put, the flow wait, stopped, crashed


async def race_on_a_full_queue(service, then):
    """Deliver record 7 while the stream's queue is full; 50 ms in, ``then(queue, flow)`` happens. Returns the race's
    result, what the queue holds after it, how the put ended, and the puts still waiting."""
    svc, queue, flow, done = service(), asyncio.Queue(maxsize=1), asyncio.Event(), []
    queue.put_nowait("earlier")
    asyncio.get_running_loop().call_later(0.05, then, queue, flow)
    result = await svc.wait_first(deliver(queue, 7, done), flow.wait())
    await asyncio.sleep(0)  # a cancelled put runs its cleanup
    return result, [queue.get_nowait() for _ in range(queue.qsize())], done, len(queue._putters)


@pytest.mark.parametrize("service", [Plain, Prompt])
def test_a_put_that_waits_finishes_when_the_stream_takes_a_record(service) -> None:
    result, queued, done, waiting = asyncio.run(race_on_a_full_queue(service, lambda queue, flow: queue.get_nowait()))
    assert queued == [7] and done == ["put 7 ended"] and waiting == 0 and not result.stopped


@pytest.mark.parametrize("service", [Plain, Prompt])
def test_a_flow_suspended_while_the_put_waits_cancels_the_put(service) -> None:
    """A rebalance suspends the flow: the waiting put is abandoned, cleans up, and the record is not queued."""
    _, queued, done, waiting = asyncio.run(race_on_a_full_queue(service, lambda queue, flow: flow.set()))
    assert queued == ["earlier"] and done == ["put 7 ended"] and waiting == 0


@pytest.mark.parametrize("service", [Plain, Prompt])
def test_errors_in_the_callback_reach_the_consumer(service) -> None:
    async def fails_at_once():
        raise ValueError("bad record")

    async def fails_after_waiting():
        await asyncio.sleep(0.01)
        raise ValueError("bad record")

    async def run(callback):
        flow = asyncio.Event()
        other = flow.wait()
        with pytest.raises(ValueError, match="bad record"):
            await service().wait_first(callback(), other)
        return inspect.getcoroutinestate(other)

    assert asyncio.run(run(fails_at_once)) in {inspect.CORO_CLOSED, inspect.CORO_SUSPENDED}
    asyncio.run(run(fails_after_waiting))
    if service is Prompt:  # the race's other coroutine is closed, not left to warn that it was never awaited
        assert asyncio.run(run(fails_at_once)) == inspect.CORO_CLOSED


def test_a_stopped_service_takes_modes_path() -> None:
    async def run():
        svc, queue, flow, done = Prompt(), asyncio.Queue(maxsize=10), asyncio.Event(), []
        svc._stopped.set()
        return await svc.wait_first(deliver(queue, 1, done), flow.wait())

    assert asyncio.run(run()).stopped


def test_the_worker_apps_consumer_delivers_promptly() -> None:
    from faust.transport.drivers.aiokafka import Consumer

    from riskpulse.core.settings import Settings
    from riskpulse.streams.worker.app import create_app

    app = create_app(Settings())
    assert issubclass(app.transport.Consumer, PromptDelivery) and issubclass(app.transport.Consumer, Consumer)
    assert create_app(Settings(prompt_delivery=False)).transport.Consumer is Consumer
    assert prompt_consumer(Consumer).__name__ == "PromptConsumer"
