"""Crash points for fault-injection tests (issue 11).

``crash_point(name, detail)`` kills the process with SIGKILL — no cleanup, no flush, as
``kill -9`` would — when the environment variable ``IMAS_TEST_CRASH_AT`` names this point
(``name``, or ``name@text`` to match only when ``text`` is in ``detail``). Unset (always,
outside the crash tests), it costs one dictionary lookup.

Points: ``declare.committed`` (the incident is committed, Slack not yet answered),
``war_room.created`` (the channel exists at Slack, its id not yet recorded),
``outbox.performed`` (a step's side effect is done, the row not yet marked done; detail
``kind/provider/recipient_kind``).
"""

from __future__ import annotations

import os
import signal

ENV = "IMAS_TEST_CRASH_AT"


def crash_point(name: str, detail: str = "") -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    wanted, _, text = spec.partition("@")
    if wanted == name and (not text or text in detail):
        os.kill(os.getpid(), signal.SIGKILL)
