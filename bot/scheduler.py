"""Time-driven work: one APScheduler ``BackgroundScheduler`` per process, whose jobs act
only while this process holds the ``scheduler`` lease row (so two replicas on one
database never run the same job twice). Job state lives in the database
(``scheduled_tasks``), not in APScheduler, so restarts lose nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from bot.flows import handoff, scheduled
from bot.runtime import Runtime
from storage.models import Lease, SeenRequest

log = logging.getLogger(__name__)
LEASE_NAME = "scheduler"
LEASE_SECONDS = 30
TICK_SECONDS = 10

Job = Callable[[Runtime], int]
JOBS: list[Job] = []


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def acquire_lease(
    rt: Runtime, holder: str, *, name: str = LEASE_NAME, seconds: float = LEASE_SECONDS
) -> bool:
    """Take or renew the named lease; True when ``holder`` holds it afterwards."""
    now = rt.clock()
    try:
        with rt.transaction() as session:
            query = session.query(Lease).filter(Lease.name == name)
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update()
            lease = query.one_or_none()
            if lease is None:
                session.add(Lease(name=name, holder=holder, until=now + timedelta(seconds=seconds)))
                return True
            if lease.holder == holder or lease.until < now:
                lease.holder = holder
                lease.until = now + timedelta(seconds=seconds)
                return True
            return False
    except IntegrityError:
        return False


def cleanup_seen_requests(rt: Runtime) -> int:
    cutoff = rt.clock() - timedelta(days=1)
    with rt.transaction() as session:
        result = session.execute(delete(SeenRequest).where(SeenRequest.seen_at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)


def run_oncall_handoffs(rt: Runtime) -> int:
    """Hand-off DMs of on-call schedules (``bot.flows.handoff``)."""
    return handoff.run_handoffs(rt)


def run_scheduled_tasks(rt: Runtime) -> int:
    """Reminders, escalations and archiving that are due (``bot.flows.scheduled``)."""
    return scheduled.run_due_tasks(rt)


JOBS.append(cleanup_seen_requests)
JOBS.append(run_scheduled_tasks)
JOBS.append(run_oncall_handoffs)


def tick(rt: Runtime, holder: str) -> int:
    """Run every job once if this process is the leader; returns the work done."""
    if not acquire_lease(rt, holder):
        return 0
    done = 0
    for job in list(JOBS):
        try:
            done += job(rt)
        except Exception:
            log.exception("scheduled job %s failed", job.__name__)
    if done:
        rt.wake_outbox()
    return done


class Scheduler:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.holder = holder_id()
        self._scheduler = BackgroundScheduler(
            timezone="UTC",
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    def start(self) -> None:
        self._scheduler.add_job(
            tick,
            "interval",
            seconds=TICK_SECONDS,
            args=[self.rt, self.holder],
            id="imas-tick",
            replace_existing=True,
        )
        self._scheduler.start()

    def stop(self) -> None:
        self._scheduler.shutdown(wait=True)
