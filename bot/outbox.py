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

Exactly once under crashes and slow targets (issue 11):

* **Fencing.** Each claim increments the row's ``claim_token``. The outcome is recorded
  only by the claimant whose token still matches (``storage.outbox.fence``: a conditional
  UPDATE); a claimant that lost its lease records nothing.
* **Lease renewal.** A heartbeat thread renews the lease of every row this worker is
  running (every ``min(IMAS_WORKER_HEARTBEAT_SECONDS, lease / 3)``), so a step slower
  than the lease is not claimed a second time while it runs.
* **Dead processes.** The same thread heartbeats this process's ``workers`` row. A row
  ``in_flight`` whose worker has not heartbeaten for ``IMAS_WORKER_DEAD_SECONDS`` is
  claimed again by any other live process, without waiting for its (long) lease; a row
  left by a claimant without a worker row (``run_once``) is claimed again when its lease
  expires. Heartbeats and their age are wall-clock time (``utcnow``), not ``rt.clock``
  (which tests move to fire scheduled work): moving that clock never makes a live worker
  look dead.
* **Bulkhead.** Each provider (a notification provider by name; Slack's own steps —
  war rooms, posts, refreshes, archiving — as ``slack``; Google's as ``google``) may hold
  at most ``Settings.provider_budget`` workers at once: a target that hangs uses its share
  and no more, and other providers' rows are claimed past it. Non-Slack rows together
  hold at most ``workers - provider_budget``: however many targets hang, Slack's own steps
  and SLACK providers' announcements always find a worker.

Steps check what is already done before acting, so a row run again after a crash does
not double its side effect.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, not_, or_
from sqlalchemy.orm import Session

from bot.domain.errors import Defer, PermanentProviderError, ProviderError, RetryableProviderError
from bot.faults import crash_point
from bot.outbox_kinds import OutboxKind
from bot.runtime import Runtime
from providers.base import delivery_attempt, delivery_since
from storage import catalog
from storage import outbox as outbox_store
from storage import workers as worker_store
from storage.db import is_unavailable
from storage.models import OutboxItem, utcnow

SLACK_KINDS = frozenset(
    {
        OutboxKind.WAR_ROOM,
        OutboxKind.SLACK_POST,
        OutboxKind.PIN_FETCH,
        OutboxKind.ARCHIVE,
        OutboxKind.REFRESH,
    }
)
GOOGLE_KINDS = frozenset({OutboxKind.LID, OutboxKind.LID_SYNC})

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


def bulkhead_key(kind: str, provider_name: str | None) -> str:
    """The concurrency budget a row draws on: its provider."""
    if kind == OutboxKind.NOTIFY:
        return f"provider:{provider_name or ''}"
    if kind in SLACK_KINDS:
        return "slack"
    if kind in GOOGLE_KINDS:
        return "google"
    return f"kind:{kind}"


def _only_slack(slack_providers: set[str]) -> ColumnElement[bool]:
    """SQL keeping only Slack's rows: its own steps and notifications by SLACK providers."""
    return or_(
        OutboxItem.kind.in_(sorted(SLACK_KINDS)),
        and_(
            OutboxItem.kind == OutboxKind.NOTIFY,
            func.coalesce(OutboxItem.provider_name, "").in_(sorted(slack_providers) or [""]),
        ),
    )


def _excluding(
    keys: set[str], *, others_full: bool = False, slack_providers: set[str] | None = None
) -> ColumnElement[bool] | None:
    """SQL leaving out the rows of the bulkheads in ``keys`` (those at their budget), and
    every non-Slack row when ``others_full`` (the workers kept for Slack are all left)."""
    if others_full:
        only = _only_slack(slack_providers or set())
        rest = _excluding(keys)
        return only if rest is None else and_(only, rest)
    if not keys:
        return None
    kinds: set[str] = set()
    providers: list[str] = []
    for key in keys:
        if key == "slack":
            kinds |= SLACK_KINDS
        elif key == "google":
            kinds |= GOOGLE_KINDS
        elif key.startswith("kind:"):
            kinds.add(key.removeprefix("kind:"))
        else:
            providers.append(key.removeprefix("provider:"))
    conditions: list[ColumnElement[bool]] = []
    if kinds:
        conditions.append(OutboxItem.kind.not_in(sorted(kinds)))
    if providers:
        conditions.append(
            not_(
                and_(
                    OutboxItem.kind == OutboxKind.NOTIFY,
                    func.coalesce(OutboxItem.provider_name, "").in_(providers),
                )
            )
        )
    return and_(*conditions) if len(conditions) > 1 else conditions[0]


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
        # Bulkhead accounting: workers in use, per provider key and in total.
        self._cond = threading.Condition()
        self._in_use: Counter[str] = Counter()
        self._total = 0
        self._others = 0  # workers held by non-Slack rows
        self._taken: dict[int, tuple[str, bool]] = {}  # row id -> (bulkhead key, is Slack)
        self._slack_providers: set[str] = set()
        # Fencing: rows this worker runs (id -> claim token), and those whose lease it lost.
        self._held: dict[int, int] = {}
        self._lost: set[int] = set()
        self._held_lock = threading.Lock()
        self.host = socket.gethostname()
        self.worker_id = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._registered = False
        self._heartbeat_stop = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self.start_heartbeat()
        self._pool = ThreadPoolExecutor(
            max_workers=self.rt.settings.outbox_workers, thread_name_prefix="outbox"
        )
        self._thread = threading.Thread(target=self._loop, name="outbox-dispatch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.rt.outbox_wake.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread:
            self._thread.join(timeout)
        if self._pool:
            self._pool.shutdown(wait=True, cancel_futures=False)
        self.stop_heartbeat()

    # -- liveness ------------------------------------------------------------------------

    @property
    def heartbeat_period(self) -> float:
        settings = self.rt.settings
        return max(0.05, min(settings.worker_heartbeat_seconds, settings.outbox_lease_seconds / 3))

    def start_heartbeat(self) -> None:
        """Register this process in ``workers`` and start renewing its leases."""
        self.register()
        self._heartbeat_stop.clear()
        self._heartbeat_thread = threading.Thread(
            target=self._heartbeat_loop, name="outbox-heartbeat", daemon=True
        )
        self._heartbeat_thread.start()

    def register(self) -> None:
        """Add this worker to ``workers``: its claims now carry its id."""
        with self.rt.transaction() as session:
            worker_store.register(
                session,
                worker_id=self.worker_id,
                host=self.host,
                pid=os.getpid(),
                now=utcnow(),  # liveness is wall-clock time, whatever rt.clock says
            )
        self._registered = True

    def stop_heartbeat(self) -> None:
        self._heartbeat_stop.set()
        if self._heartbeat_thread:
            self._heartbeat_thread.join(10)
            self._heartbeat_thread = None
        if self._registered:
            try:
                with self.rt.transaction() as session:
                    worker_store.leave(session, worker_id=self.worker_id)
            except Exception:  # the database may be gone at shutdown: the row just ages out
                log.warning("could not remove worker %s at shutdown", self.worker_id)
            self._registered = False

    def _heartbeat_loop(self) -> None:
        while not self._heartbeat_stop.wait(self.heartbeat_period):
            try:
                self.heartbeat_once()
            except Exception as exc:
                if is_unavailable(exc):
                    log.warning("outbox heartbeat: database unavailable (%s)", type(exc).__name__)
                else:
                    log.exception("outbox heartbeat failed; retrying")

    def heartbeat_once(self) -> set[int]:
        """Heartbeat this worker and renew the leases it holds; returns the ids it lost."""
        settings = self.rt.settings
        with self._held_lock:
            held = dict(self._held)
        now, wall = self.rt.clock(), utcnow()
        with self.rt.transaction() as session:
            worker_store.heartbeat(
                session, worker_id=self.worker_id, host=self.host, pid=os.getpid(), now=wall
            )
            lost = outbox_store.renew_leases(
                session, held=held, now=now, lease_seconds=settings.outbox_lease_seconds
            )
            worker_store.forget_dead(
                session,
                now=wall,
                older_than=timedelta(seconds=max(3600.0, 100 * settings.worker_dead_seconds)),
            )
        with self._held_lock:  # a row finished meanwhile is not lost: it was released
            lost = {item_id for item_id in lost if self._held.get(item_id) == held[item_id]}
            self._lost |= lost
        if lost:
            log.warning("outbox rows %s were claimed by another worker while running", sorted(lost))
        self.rt.outbox_wake.set()  # rows of a dead worker may have become due
        return lost

    def holds(self, item: OutboxItem) -> bool:
        with self._held_lock:
            return self._held.get(item.id) == item.claim_token and item.id not in self._lost

    # -- dispatch ------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                claimed = self._claim_and_submit()
            except Exception as exc:
                if is_unavailable(exc):  # the database is down: one line, retried
                    log.warning("outbox: database unavailable (%s); retrying", type(exc).__name__)
                else:
                    log.exception("outbox dispatch failed; retrying")
                claimed = 0
            if claimed == 0:
                self.rt.outbox_wake.wait(self.rt.settings.outbox_poll_seconds)
                self.rt.outbox_wake.clear()

    @property
    def others_cap(self) -> int:
        """Workers non-Slack rows may hold together: Slack always keeps its budget."""
        settings = self.rt.settings
        return max(1, settings.outbox_workers - settings.provider_budget)

    def _is_slack(self, key: str) -> bool:
        if key == "slack":
            return True
        return (
            key.startswith("provider:") and key.removeprefix("provider:") in self._slack_providers
        )

    def _exclusion(self) -> ColumnElement[bool] | None:
        budget = self.rt.settings.provider_budget
        with self._cond:
            saturated = {key for key, n in self._in_use.items() if n >= budget}
            others_full = self._others >= self.others_cap
        return _excluding(saturated, others_full=others_full, slack_providers=self._slack_providers)

    def _take(self, item: OutboxItem) -> bool:
        """Reserve a worker for ``item`` within its provider's budget (bulkhead), keeping
        Slack's budget free of other providers' rows."""
        key = bulkhead_key(item.kind, item.provider_name)
        slack = self._is_slack(key)
        with self._cond:
            if self._total >= self.rt.settings.outbox_workers:
                return False
            if self._in_use[key] >= self.rt.settings.provider_budget:
                return False
            if not slack and self._others >= self.others_cap:
                return False
            self._in_use[key] += 1
            self._total += 1
            self._others += 0 if slack else 1
            self._taken[item.id] = (key, slack)
            return True

    def _give_back(self, item: OutboxItem) -> None:
        with self._cond:
            key, slack = self._taken.pop(item.id)
            self._in_use[key] -= 1
            if self._in_use[key] <= 0:
                del self._in_use[key]
            self._total -= 1
            self._others -= 0 if slack else 1
            self._cond.notify_all()

    def in_use(self) -> dict[str, int]:
        """Workers in use per provider key (bulkhead accounting; for tests and metrics)."""
        with self._cond:
            return dict(self._in_use)

    def _claim_and_submit(self) -> int:
        workers = self.rt.settings.outbox_workers
        with self._cond:
            while self._total >= workers and not self._stop.is_set():
                self._cond.wait(1.0)
            free = workers - self._total
        if self._stop.is_set() or free <= 0:
            return 0
        taken: list[OutboxItem] = []

        def accept(item: OutboxItem) -> bool:
            if self._take(item):
                taken.append(item)
                return True
            return False

        try:
            items = self.claim(limit=free, accept=accept, exclude=self._exclusion)
        except Exception:
            for item in taken:
                self._give_back(item)
            raise
        assert self._pool is not None
        for item in items:
            self._pool.submit(self._run_and_release, item)
        return len(items)

    def _run_and_release(self, item: OutboxItem) -> None:
        try:
            self.rt.ack_gate.wait()
            if self.holds(item):
                self.process(item)
            else:
                self._release(item)
                log.warning("outbox %s #%s: lease lost before it ran", item.kind, item.id)
        finally:
            self._give_back(item)
            self.rt.outbox_wake.set()

    # -- one row -----------------------------------------------------------------------

    def claim(
        self,
        *,
        limit: int,
        now: datetime | None = None,
        accept: Callable[[OutboxItem], bool] | None = None,
        exclude: Callable[[], ColumnElement[bool] | None] | None = None,
    ) -> list[OutboxItem]:
        settings = self.rt.settings
        with self.rt.transaction() as session:
            if exclude is not None:  # which providers are Slack (their rows use its budget)
                self._slack_providers = {
                    row.name for row in catalog.list_providers(session) if row.type == "SLACK"
                }
            items = outbox_store.claim_due(
                session,
                now=now or self.rt.clock(),
                limit=limit,
                lease_seconds=settings.outbox_lease_seconds,
                worker_id=self.worker_id if self._registered else None,
                live_since=utcnow() - timedelta(seconds=settings.worker_dead_seconds),
                exclude=exclude,
                accept=accept,
            )
            for item in items:
                session.expunge(item)
        with self._held_lock:
            for item in items:
                self._held[item.id] = item.claim_token
                self._lost.discard(item.id)
        return items

    def _release(self, item: OutboxItem) -> None:
        with self._held_lock:
            if self._held.get(item.id) == item.claim_token:
                del self._held[item.id]
                self._lost.discard(item.id)

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
        since = delivery_since.set(item.first_claimed_at)
        try:
            if step is None:
                raise PermanentProviderError(f"no step registered for outbox kind {item.kind!r}")
            result = step(self.rt, item)
            crash_point(
                "outbox.performed", f"{item.kind}/{item.provider_name}/{item.recipient_kind}"
            )
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
            delivery_since.reset(since)
            delivery_attempt.reset(token)
            self._release(item)

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
            row = outbox_store.fence(session, item_id=item.id, claim_token=item.claim_token)
            if row is None:
                # Another worker claimed the row after this one's lease was lost: its
                # outcome is the one recorded.
                log.warning(
                    "outbox %s #%s: lease lost; outcome %s not recorded", item.kind, item.id, state
                )
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
