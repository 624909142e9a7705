"""The seed's "Option C": declaring an incident from Python.

    from bot.orchestrator import IncidentOrchestrator
    incident = IncidentOrchestrator().create_incident(
        data={"title": ..., "service": "redis-prod", "severity": "SEV2_HIGH"},
        user="alice@example.com", trigger_orchestration=True)

``data["service"]`` may be a Service row, a name or an id; ``user`` a Person, an e-mail
address or a Slack user id. With ``trigger_orchestration=True`` the orchestration steps
(LID, war room, notifications) run before the call returns (a running ``imas serve`` would
also pick them up from the outbox); with False they are left to the server.
"""

from __future__ import annotations

import time
from typing import Any

from bot.domain.actor import Actor
from bot.domain.errors import InputError
from bot.flows.declare import DeclareInput, declare
from bot.runtime import Runtime
from bot.settings import Settings, load_settings
from storage import incidents as incident_store
from storage import outbox as outbox_store
from storage.models import Incident, Person, Service


class IncidentOrchestrator:
    def __init__(self, settings: Settings | None = None, runtime: Runtime | None = None) -> None:
        self.rt = runtime or Runtime.build(settings or load_settings())

    def create_incident(
        self,
        *,
        data: dict[str, Any],
        user: Any = None,
        trigger_orchestration: bool = True,
        wait_seconds: float = 30.0,
    ) -> Incident:
        """Declare an incident; returns it (with ``short_id``). Raises InputError /
        NotFoundError for bad data, writing nothing."""
        service = data.get("service")
        if isinstance(service, Service):
            service = service.id
        if service is None:
            raise InputError("data['service'] is required", field="service")
        actor = self._actor(user)
        incident, _created = declare(
            self.rt,
            data=DeclareInput(
                title=str(data.get("title", "")),
                service=service,
                severity=str(data.get("severity", "")),
                description=str(data.get("description", "")),
                scopes=list(data.get("scopes", [])),
                lead=data.get("lead"),
                private=bool(data.get("private", False)),
            ),
            actor=actor,
            idempotency_key=data.get("idempotency_key"),
        )
        if trigger_orchestration:
            self.run_pending(wait_seconds)
        with self.rt.transaction() as session:
            found = incident_store.get_incident(session, ref=incident.id)
            assert found is not None
            return found

    def run_pending(self, wait_seconds: float) -> None:
        """Run due outbox rows here until none is left or ``wait_seconds`` pass."""
        from bot.steps import make_worker

        worker = make_worker(self.rt)
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            if worker.run_once() == 0:
                with self.rt.transaction() as session:
                    depth = outbox_store.depth(session)
                if not any(depth.get(state) for state in ("pending", "failed", "in_flight")):
                    return
                time.sleep(0.2)

    @staticmethod
    def _actor(user: Any) -> Actor:
        if isinstance(user, Person):
            return Actor(
                label=user.label,
                source="python",
                slack_user_id=user.slack_user_id,
                email=user.email,
            )
        if isinstance(user, str) and user:
            if "@" in user:
                return Actor(label=user, source="python", email=user)
            return Actor(label=user, source="python", slack_user_id=user)
        return Actor(label="python", source="python")
