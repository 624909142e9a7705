"""The outbox retry decision: backoff bounds, Retry-After, permanent errors, deferral,
give-up, crashed workers' leases."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from bot.domain.errors import Defer, PermanentProviderError, RetryableProviderError
from bot.outbox import OutboxWorker, backoff_seconds
from bot.runtime import Runtime
from storage import outbox as store
from storage.models import OutboxItem, Worker, utcnow
from tests.scenario.conftest import wait_until


@pytest.mark.parametrize("attempt", range(1, 15))
def test_backoff_is_equal_jitter_capped(attempt):
    rng = random.Random(attempt)
    ceiling = min(300, 2 * 2 ** (attempt - 1))
    for _ in range(50):
        delay = backoff_seconds(attempt, cap=300, retry_after=None, rng=rng)
        assert ceiling / 2 <= delay <= ceiling


def test_retry_after_is_a_floor():
    rng = random.Random(1)
    assert all(backoff_seconds(1, cap=300, retry_after=7, rng=rng) >= 7 for _ in range(100))


def run(make_settings, behaviour, **overrides):
    rt = Runtime.build(make_settings(**overrides))
    calls = []

    def step(_rt, item):
        calls.append(item.attempts)
        return behaviour(len(calls))

    worker = OutboxWorker(rt, steps={"test": step}, rng=random.Random(0))
    with rt.transaction() as session:
        store.enqueue(session, kind="test", idempotency_key="k1")
    return rt, worker, calls


def row(rt):
    with rt.transaction() as session:
        return session.query(OutboxItem).one()


def test_permanent_error_is_dead_after_one_attempt(make_settings):
    def boom(_n):
        raise PermanentProviderError(
            "Slack chat.postMessage failed: channel_not_found", hint="invite the bot"
        )

    rt, worker, calls = run(make_settings, boom)
    worker.run_once()
    worker.run_once(now=utcnow() + timedelta(hours=1))
    item = row(rt)
    assert item.state == "dead" and calls == [1]
    assert "channel_not_found" in item.last_error and "invite the bot" in item.last_error


def test_retryable_honours_retry_after_then_succeeds(make_settings):
    def flaky(n):
        if n == 1:
            raise RetryableProviderError("HTTP 429", retry_after=30)
        return {"ok": True}

    rt, worker, calls = run(make_settings, flaky)
    worker.run_once()
    item = row(rt)
    assert item.state == "failed" and item.next_attempt_at - utcnow() > timedelta(seconds=29)
    assert worker.run_once(now=utcnow() + timedelta(seconds=10)) == 0  # not before the hint
    worker.run_once(now=utcnow() + timedelta(seconds=40))
    item = row(rt)
    assert item.state == "done" and item.attempts == 2 and item.result == {"ok": True}


def test_defer_does_not_count_as_an_attempt(make_settings):
    def waits(n):
        if n == 1:
            raise Defer("waiting", 0.0)
        return {}

    rt, worker, _calls = run(make_settings, waits)
    worker.run_once()
    assert row(rt).attempts == 0 and row(rt).state == "pending"
    worker.run_once(now=utcnow() + timedelta(seconds=1))
    assert row(rt).state == "done" and row(rt).attempts == 1


def test_gives_up_after_the_retry_window(make_settings):
    def down(_n):
        raise RetryableProviderError("HTTP 503")

    rt, worker, _calls = run(make_settings, down, outbox_retry_hours=1)
    rt.clock = lambda: utcnow() + timedelta(hours=2)
    worker.run_once(now=utcnow())
    assert row(rt).state == "dead" and "gave up" in row(rt).last_error


def test_expired_lease_is_claimed_again(make_settings):
    rt, worker, calls = run(make_settings, lambda n: {}, outbox_lease_seconds=5)
    crashed = worker.claim(limit=1)  # a worker claims the row, then dies
    assert crashed and worker.run_once() == 0
    worker.run_once(now=utcnow() + timedelta(seconds=6))
    assert row(rt).state == "done" and calls == [2]


# -- fencing, lease renewal, dead workers (issue 11) -----------------------------------


class Clock:
    """A clock the test moves: leases and heartbeats are compared against it."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_a_step_slower_than_its_lease_runs_once(make_settings):
    rt = Runtime.build(make_settings(outbox_lease_seconds=1, worker_heartbeat_seconds=0.1))
    started, release = threading.Event(), threading.Event()
    calls = []

    def slow(_rt, item):
        calls.append(item.claim_token)
        started.set()
        release.wait()
        return {"ran": len(calls)}

    first = OutboxWorker(rt, steps={"test": slow})
    other = OutboxWorker(rt, steps={"test": slow})
    with rt.transaction() as session:
        store.enqueue(session, kind="test", idempotency_key="slow")
    clock = Clock()  # from now on, time moves only when the test says so
    rt.clock = clock
    first.start()
    try:
        wait_until(started.is_set, "the step to start")
        for _ in range(5):  # five leases' worth of time pass while the step runs
            clock.advance(0.9)
            wait_until(lambda: row(rt).lease_until > clock() + timedelta(seconds=0.5), "renewal")
            assert other.claim(limit=10) == []  # a second claimant finds nothing to run
        release.set()
        wait_until(lambda: row(rt).state == "done", "the step to finish")
    finally:
        release.set()
        first.stop()
    item = row(rt)
    assert calls == [1] and item.attempts == 1 and item.claim_token == 1
    assert item.result == {"ran": 1}


def test_a_claimant_that_lost_its_lease_records_nothing(make_settings):
    rt, worker, calls = run(make_settings, lambda n: {"run": n}, outbox_lease_seconds=5)
    [stale] = worker.claim(limit=1)  # its lease runs out (no heartbeat)
    other = OutboxWorker(rt, steps=worker.steps)
    assert other.run_once(now=utcnow() + timedelta(seconds=6)) == 1  # claims and finishes
    assert worker.heartbeat_once() == {stale.id}  # the renewal sees the lease is gone
    worker.process(stale)  # the first claimant finishes late
    item = row(rt)
    assert calls == [2, 1]  # step(item.attempts): the new claim ran first, then the stale
    assert item.state == "done" and item.result == {"run": 1} and item.claim_token == 2


def test_a_lost_lease_cannot_turn_done_into_failed(make_settings):
    def second_fails(n):
        if n == 2:
            raise RetryableProviderError("HTTP 503")
        return {"run": n}

    rt, worker, _calls = run(make_settings, second_fails, outbox_lease_seconds=5)
    [stale] = worker.claim(limit=1)
    OutboxWorker(rt, steps=worker.steps).run_once(now=utcnow() + timedelta(seconds=6))
    worker.process(stale)
    item = row(rt)
    assert item.state == "done" and item.last_error is None


def test_rows_of_a_dead_worker_are_reclaimed_before_their_lease_expires(make_settings):
    rt, dead, calls = run(make_settings, lambda n: {"run": n}, outbox_lease_seconds=120)
    dead.register()
    [held] = dead.claim(limit=1)
    assert held.claimed_by == dead.worker_id
    live = OutboxWorker(rt, steps=dead.steps)
    live.register()
    assert live.run_once() == 0  # its claimant is alive: left alone
    with rt.transaction() as session:  # the dead one's last heartbeat is now too old
        session.execute(
            update(Worker)
            .where(Worker.id == dead.worker_id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=rt.settings.worker_dead_seconds + 1))
        )
    assert row(rt).lease_until > rt.clock()  # the lease has not expired...
    assert live.run_once() == 1  # ...yet the row is claimed again, by the live worker
    item = row(rt)
    assert item.state == "done" and item.claimed_by == live.worker_id and calls == [2]
    dead.process(held)  # should the "dead" process still finish: nothing recorded
    assert row(rt).result == {"run": 1}


def test_a_live_worker_never_reclaims_its_own_rows(make_settings):
    """Moving the runtime's clock (as tests do to fire scheduled work) or a late heartbeat
    must not make a worker re-run what it is running itself."""
    rt, worker, calls = run(make_settings, lambda n: {"run": n})
    worker.register()
    [held] = worker.claim(limit=1)
    with rt.transaction() as session:
        session.execute(
            update(Worker)
            .where(Worker.id == worker.worker_id)
            .values(heartbeat_at=utcnow() - timedelta(hours=1))
        )
    rt.clock = lambda: utcnow() + timedelta(minutes=31)
    assert worker.claim(limit=10) == []
    worker.process(held)
    assert row(rt).state == "done" and calls == [1]
