"""The wait seam (pooldbapi/waits.py): synchronous code run in greenlets on an event loop's
thread, its waits awaited; outside a greenlet the same calls block as before."""
from __future__ import annotations

import asyncio
import gc
import os
import threading
import time

import greenlet
import pytest

from pooldbapi import waits


def run(coro):
    return asyncio.run(coro)


def live_calls():
    """Worker greenlets in the middle of a call (the idle ones are kept for later calls)."""
    gc.collect()
    idle = waits.idle_workers()  # (those of other threads' event loops among them)
    return [g for g in gc.get_objects()
            if isinstance(g, greenlet.greenlet) and getattr(g, "pooldbapi_async", False)
            and not g.dead and not any(g is i for i in idle)]


def test_a_spawned_call_returns_its_value_and_its_awaits_run_on_the_loop():
    thread = threading.get_ident()

    def work():
        assert waits.active()
        value = waits.await_only(asyncio.sleep(0.01, result=41))
        return value + 1, threading.get_ident()

    assert run(waits.spawn(work)) == (42, thread)
    assert not waits.active()


def test_exceptions_of_the_call_and_of_its_awaits_reach_the_caller():
    async def fails():
        await asyncio.sleep(0)
        raise KeyError("driver")

    def caught_inside():
        with pytest.raises(KeyError, match="driver"):
            waits.await_only(fails())
        raise ValueError("mine")

    with pytest.raises(ValueError, match="mine"):
        run(waits.spawn(caught_inside))

    class Stop(BaseException):
        pass

    def stops():
        raise Stop

    with pytest.raises(Stop):
        run(waits.spawn(stops))
    assert live_calls() == []


def test_a_cancellation_reaches_the_call_at_its_wait_and_the_call_may_finish():
    seen = []

    def work():
        try:
            waits.await_only(asyncio.sleep(10))
        except asyncio.CancelledError:
            seen.append("cancelled at the wait")
            raise

    async def main():
        task = asyncio.ensure_future(waits.spawn(work))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    assert seen == ["cancelled at the wait"]
    assert live_calls() == []


def test_a_shielded_call_is_told_of_its_cancellation_and_ends_its_wait_first():
    told, seen = [], []

    def work():
        try:
            waits.await_only(asyncio.sleep(0.1))  # a driver's wait: not cut short
        except asyncio.CancelledError:
            seen.append("thrown in")
            raise
        seen.append("wait ended")
        return "done"

    async def main():
        task = asyncio.ensure_future(waits.spawn(work, lambda: told.append("cancelled")))
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(waits.Cancelled) as info:
            await task
        return info.value.ended

    ended = run(main())
    assert told == ["cancelled"] and seen == ["wait ended"]
    assert ended.value == "done" and ended.exc is None
    assert live_calls() == []


def test_one_shield_serves_calls_one_after_another_each_told_of_its_own_cancellation():
    told = []
    shield = waits.Shield(lambda: told.append("cancelled"))

    def work(seconds, value):
        waits.await_only(asyncio.sleep(seconds))
        return value

    async def call(*args):
        return await waits.drive(work, args, shield)

    async def main():
        task = asyncio.ensure_future(call(0.05, "first"))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(waits.Cancelled) as info:
            await task
        assert info.value.ended.value == "first" and shield.cancelled
        # the next call under the same shield starts uncancelled and returns its value
        return await call(0, "second")

    assert run(main()) == "second"
    assert told == ["cancelled"] and not shield.cancelled
    assert live_calls() == []


def _turns_until_resumed(wait_for):
    """Turns of the loop between a future's result and the resumption of what waits for it:
    a callback that schedules itself again counts the turns meanwhile."""
    async def main():
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        ticks = []

        def tick():
            ticks.append(None)
            if len(ticks) < 10:
                loop.call_soon(tick)

        def done():
            future.set_result("ready")
            tick()

        loop.call_soon(done)
        assert await wait_for(future) == "ready"
        return len(ticks)
    return run(main())


def test_a_shielded_wait_resumes_as_soon_as_a_plain_await_of_the_future_does():
    async def plain(future):
        return await future

    async def shielded(future):
        return await waits.spawn(lambda: waits.await_only(future), lambda: None)

    async def shielded_coroutine(future):  # (a driver's coroutine that awaits its future)
        return await waits.spawn(lambda: waits.await_only(plain(future)), lambda: None)

    turns = _turns_until_resumed(plain)
    assert _turns_until_resumed(shielded) == turns
    assert _turns_until_resumed(shielded_coroutine) == turns


def test_a_shielded_wait_is_told_of_each_cancellation_once_and_the_driver_reads_its_future():
    told, seen = [], []

    async def driver(future):
        try:
            return await future  # a failure of the driver's own future reaches the driver
        except KeyError:
            seen.append("driver read its failure")
            return "handled"

    async def main():
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        task = asyncio.ensure_future(waits.spawn(lambda: waits.await_only(driver(future)),
                                                 lambda: told.append("cancelled")))
        await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.sleep(0.01)
        assert not future.cancelled() and not task.done()  # the driver's wait goes on
        future.set_exception(KeyError("io"))
        with pytest.raises(waits.Cancelled) as info:
            await task
        return info.value.ended

    ended = run(main())
    assert told == ["cancelled"] and seen == ["driver read its failure"]
    assert ended.value == "handled"
    assert live_calls() == []


def test_a_call_sees_its_tasks_contextvars_and_what_it_sets_stays_in_it():
    import contextvars
    var = contextvars.ContextVar("request", default="none")

    def call():
        seen = var.get()
        var.set("set in the call")
        return seen

    async def task(value):
        var.set(value)
        return await waits.spawn(call), await waits.spawn(call), var.get()

    async def main():
        return await asyncio.gather(task("a"), task("b"))

    assert run(main()) == [("a", "a", "a"), ("b", "b", "b")]


def test_worker_greenlets_are_reused_from_call_to_call():
    def me():
        import greenlet
        return greenlet.getcurrent()

    async def twice():
        return await waits.spawn(me), await waits.spawn(me)

    first, second = run(twice())
    assert first is second


def test_nested_calls_run_at_once_as_tasks_not_threads():
    threads_before = set(threading.enumerate())
    order = []

    def share(n):
        def go():
            order.append(("start", n))
            waits.sleep(0.1)
            order.append(("end", n))
            return n * 10
        return go

    def outer():
        return waits.gather([share(1), share(2), share(3)], lambda: None)

    assert run(waits.spawn(outer)) == [10, 20, 30]
    assert [o for o, _ in order[:3]] == ["start"] * 3  # at once, not one after another
    # no thread started (another test's background thread may end meanwhile)
    assert set(threading.enumerate()) - threads_before == set()
    assert live_calls() == []


def test_gather_waits_for_every_call_and_raises_the_first_failure_in_order():
    ended = []

    def slow_ok():
        waits.sleep(0.1)
        ended.append("slow")
        return 1

    def fails_first():
        raise ValueError("second share")

    def outer():
        with pytest.raises(ValueError, match="second share"):
            waits.gather([slow_ok, fails_first], lambda: None)
        return list(ended)

    assert run(waits.spawn(outer)) == ["slow"]


def test_an_interrupted_gather_tells_its_calls_to_stop_and_still_waits_for_them():
    stop = threading.Event()
    ended = []

    def share():
        while not stop.is_set():
            waits.sleep(0.01)
        ended.append("stopped at a boundary")

    def outer():
        waits.gather([share, share], stop.set)

    async def main():
        task = asyncio.ensure_future(waits.spawn(outer))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    assert ended == ["stopped at a boundary"] * 2
    assert live_calls() == []


def test_await_only_outside_a_call_raises_and_closes_the_coroutine():
    async def never():
        raise AssertionError("ran")

    coro = never()
    with pytest.raises(waits.NotInLoop):
        waits.await_only(coro)
    assert coro.cr_frame is None  # closed: no "never awaited" warning


def test_a_coroutine_that_never_waits_costs_no_switch_to_the_loop():
    import greenlet

    async def ready():
        return "rows"

    async def waits_once():
        await asyncio.sleep(0)
        return "later"

    def work():
        switches = []
        previous = greenlet.settrace(lambda event, args: switches.append(event))
        try:
            assert waits.await_only(ready()) == "rows"
            ready_switches = len(switches)
            assert waits.await_only(waits_once()) == "later"
        finally:
            greenlet.settrace(previous)
        return ready_switches, len(switches)

    ready_switches, total = run(waits.spawn(work))
    assert ready_switches == 0 and total >= 2  # to the loop and back for the one that waits
    assert waits.run_ready(ready()) == "rows"
    with pytest.raises(waits.NotInLoop):
        waits.run_ready(waits_once())


def test_sleep_and_locks_block_as_before_outside_a_call():
    started = time.monotonic()
    waits.sleep(0.05)
    assert time.monotonic() - started >= 0.05
    assert isinstance(waits.new_lock(), type(threading.Lock()))
    assert waits.loop_key() is None


def test_a_loop_lock_held_across_a_wait_lets_the_loop_go_on():
    order = []

    def make():
        return waits.new_lock()

    def holder(lock):
        def go():
            with lock:
                order.append("held")
                waits.sleep(0.05)  # another greenlet of this thread wants it meanwhile
                order.append("released")
        return go

    def taker(lock):
        def go():
            waits.sleep(0.01)
            with lock:
                order.append("taken")
        return go

    def outer():
        lock = make()
        assert isinstance(lock, waits.LoopLock)
        waits.gather([holder(lock), taker(lock)], lambda: None)
        assert not lock.locked()

    run(asyncio.wait_for(waits.spawn(outer), 5))
    assert order == ["held", "released", "taken"]


def test_a_loop_lock_taken_by_acquire_is_waited_for_and_freed_by_release():
    """The runner takes a session's lock with acquire(False) (then `with`'s wait if taken)
    and frees it with release(): another greenlet waits for it at its `with`, awaiting."""
    order = []

    def holder(lock):
        def go():
            assert lock.acquire(False)
            try:
                order.append("held")
                waits.sleep(0.05)
                assert not lock.acquire(False)  # (taken: not taken twice)
                order.append("released")
            finally:
                lock.release()
        return go

    def taker(lock):
        def go():
            waits.sleep(0.01)
            if not lock.acquire(False):
                order.append("waits")
                lock.__enter__()
            try:
                order.append("taken")
            finally:
                lock.release()
        return go

    def outer():
        lock = waits.new_lock()
        assert isinstance(lock, waits.LoopLock)
        waits.gather([holder(lock), taker(lock)], lambda: None)
        assert not lock.locked()

    run(asyncio.wait_for(waits.spawn(outer), 5))
    assert order == ["held", "waits", "released", "taken"]


def test_a_pool_wakeup_from_another_thread_wakes_an_awaiting_call():
    lock = threading.Lock()

    def waiter():
        with lock:
            wake = waits.Wakeup(lock)
            threading.Timer(0.05, notify, (wake,)).start()
            started = time.monotonic()
            wake.wait(lock, 60)
            return time.monotonic() - started

    notified = []

    def notify(wake):
        with lock:
            notified.append(True)
            wake.notify()

    waited = run(waits.spawn(waiter))
    assert notified and waited < 60  # woken, not timed out


def test_each_event_loop_has_a_key_of_its_own():
    def key():
        return waits.loop_key()

    async def twice():
        return await waits.spawn(key), await waits.spawn(key)

    first = run(twice())
    second = run(twice())
    assert first[0] == first[1] and first[0] != second[0]


def test_shared_threads_are_made_once_at_the_first_call_and_anew_in_a_forked_child():
    """SharedThreads (runner.executor, the blocking calls' pool): one executor for the
    process, made when first asked for; a forked child, where the parent's threads do not
    exist, makes its own, which runs its work."""
    threads = waits.SharedThreads(2, "pooldbapi-test")
    assert threads._executor is None  # nothing made before the first call
    parents = threads()
    try:
        assert threads() is parents
        assert parents.submit(threading.current_thread).result(10).name.startswith(
            "pooldbapi-test")
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports by its exit status only
            code = 1
            try:
                own = threads()
                code = 0 if own is not parents and own.submit(lambda: 7).result(10) == 7 else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert threads() is parents  # the parent keeps its own
    finally:
        parents.shutdown()
