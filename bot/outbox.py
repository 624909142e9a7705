"""The outbox worker: performs side effects recorded in the ``outbox`` table.

A dispatcher thread claims due rows (woken at once by ``Runtime.wake_outbox`` after a
commit, else every ``outbox_poll_seconds``) and runs each on a thread pool, so one slow
target never holds the others. Each step is idempotent; outcome handling:

* success -> ``done`` (the step's timeline events commit in the same transaction);
* ``Defer`` -> back to ``pending`` shortly, attempt not counted (waiting on another step);
* RetryableProviderError -> ``failed`` with ``next_attempt_at`` = now + max(Retry-After,
  "equal jitter" exponential backoff: half the ceiling plus a random half, the ceiling
  doubling from 2 s up to ``outbox_backoff_cap_seconds``), so a target that is down for
  10 minutes sees about ten attempts;
* PermanentProviderError, or a row still failing ``outbox_retry_hours`` after it was
  created (or after ``outbox_max_attempts``) -> ``dead`` with the reason.

A row left ``in_flight`` by a killed process is claimed again when its lease expires, so
nothing is lost; steps check what is already done before acting, so nothing is doubled.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.domain.errors import Defer, PermanentProviderError, ProviderError, RetryableProviderError
from bot.runtime import Runtime
from providers.base import delivery_attempt
from storage import outbox as outbox_store
from storage.models import OutboxItem

log = logging.getLogger(__name__)


# A step performs one outbox row. It may write to ``session`` (committed with ``done``)
# and returns the result dict stored on the row.
Step = Callable[[Runtime, OutboxItem], dict[str, object]]
Finisher = Callable[[Session, Runtime, OutboxItem, bool, str | None], None]


def backoff_seconds(
    attempt: int, *, cap: float, retry_after: float | None, rng: random.Random
) -> float:
    """Delay before attempt ``attempt + 1``: equal jitter, never sooner than ``retry_after``."""
    ceiling = min(cap, 2.0 * float(2 ** max(0, min(attempt, 30) - 1)))
    delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, retry_after + rng.uniform(0, 0.5))
    return delay


class OutboxWorker:
    """Runs outbox rows with registered steps. ``run_once`` drives it synchronously."""

    def __init__(
        self,
        rt: Runtime,
        *,
        steps: dict[str, Step],
        on_finish: Finisher | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.rt = rt
        self.steps = steps
        self.on_finish = on_finish
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not crypto
        self._stop = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._busy = threading.Semaphore(rt.settings.outbox_workers)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=self.rt.settings.outbox_workers, thread_name_prefix="outbox"
        )
        self._thread = threading.Thread(target=self._loop, name="outbox-dispatch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.rt.outbox_wake.set()
        if self._thread:
            self._thread.join(timeout)
        if self._pool:
            self._pool.shutdown(wait=True, cancel_futures=False)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                claimed = self._claim_and_submit()
            except Exception:
                log.exception("outbox dispatch failed; retrying")
                claimed = 0
            if claimed == 0:
                self.rt.outbox_wake.wait(self.rt.settings.outbox_poll_seconds)
                self.rt.outbox_wake.clear()

    def _claim_and_submit(self) -> int:
        free = 0
        while self._busy.acquire(blocking=False):
            free += 1
        if free == 0:
            self._busy.acquire()  # wait for a worker to finish
            free = 1
        try:
            items = self.claim(limit=free)
        except Exception:
            for _ in range(free):
                self._busy.release()
            raise
        for _ in range(free - len(items)):
            self._busy.release()
        assert self._pool is not None
        for item in items:
            self._pool.submit(self._run_and_release, item)
        return len(items)

    def _run_and_release(self, item: OutboxItem) -> None:
        try:
            self.rt.ack_gate.wait()
            self.process(item)
        finally:
            self._busy.release()
            self.rt.outbox_wake.set()

    # -- one row -----------------------------------------------------------------------

    def claim(self, *, limit: int, now: datetime | None = None) -> list[OutboxItem]:
        with self.rt.transaction() as session:
            items = outbox_store.claim_due(
                session,
                now=now or self.rt.clock(),
                limit=limit,
                lease_seconds=self.rt.settings.outbox_lease_seconds,
            )
            for item in items:
                session.expunge(item)
            return items

    def run_once(self, *, now: datetime | None = None, limit: int = 100) -> int:
        """Claim and run every due row in this thread; returns how many ran."""
        items = self.claim(limit=limit, now=now)
        for item in items:
            self.process(item)
        return len(items)

    def drain(self, *, rounds: int = 50) -> None:
        """Run due rows until none is due (tests and the CLI without a server)."""
        for _ in range(rounds):
            if self.run_once() == 0:
                return

    def process(self, item: OutboxItem) -> None:
        step = self.steps.get(item.kind)
        token = delivery_attempt.set(item.attempts)
        try:
            if step is None:
                raise PermanentProviderError(f"no step registered for outbox kind {item.kind!r}")
            result = step(self.rt, item)
        except Defer as exc:
            self._finish(item, state="pending", error=None, delay=exc.seconds, uncount=True)
        except RetryableProviderError as exc:
            self._retry_or_die(item, exc.describe(), exc.retry_after)
        except ProviderError as exc:
            self._finish(item, state="dead", error=exc.describe())
        except Exception as exc:
            log.exception("outbox step %s #%s crashed", item.kind, item.id)
            self._retry_or_die(item, f"internal error: {type(exc).__name__}: {exc}", None)
        else:
            self._finish(item, state="done", error=None, result=result)
        finally:
            delivery_attempt.reset(token)

    def _retry_or_die(self, item: OutboxItem, error: str, retry_after: float | None) -> None:
        settings = self.rt.settings
        age = self.rt.clock() - item.created_at
        if item.attempts >= settings.outbox_max_attempts or age > timedelta(
            hours=settings.outbox_retry_hours
        ):
            self._finish(
                item, state="dead", error=f"gave up after {item.attempts} attempts: {error}"
            )
            return
        delay = backoff_seconds(
            item.attempts,
            cap=self.rt.settings.outbox_backoff_cap_seconds,
            retry_after=retry_after,
            rng=self.rng,
        )
        log.warning(
            "outbox %s #%s attempt %s failed (%s); retry in %.1fs",
            item.kind,
            item.id,
            item.attempts,
            error,
            delay,
        )
        self._finish(item, state="failed", error=error, delay=delay)

    def _finish(
        self,
        item: OutboxItem,
        *,
        state: str,
        error: str | None,
        result: dict[str, object] | None = None,
        delay: float = 0.0,
        uncount: bool = False,
    ) -> None:
        with self.rt.transaction() as session:
            row = session.get(OutboxItem, item.id)
            if row is None:
                return
            now = self.rt.clock()
            row.state = state
            row.lease_until = None
            if uncount:
                row.attempts = max(0, row.attempts - 1)
            if state in ("failed", "pending"):
                row.next_attempt_at = now + timedelta(seconds=delay)
            if error is not None:
                row.last_error = error[:2000]
            if result is not None:
                row.result = {**(row.result or {}), **result}
            if state == "done":
                row.done_at = now
            if state in ("done", "dead") and self.on_finish is not None:
                self.on_finish(session, self.rt, row, state == "done", error)
        if state == "dead":
            log.error("outbox %s #%s is dead: %s", item.kind, item.id, error)
