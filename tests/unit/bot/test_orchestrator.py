"""The seed's option C: IncidentOrchestrator().create_incident(...)."""

from __future__ import annotations

import pytest

from bot import config_file
from bot.domain.errors import NotFoundError
from bot.orchestrator import IncidentOrchestrator
from bot.runtime import Runtime
from storage import catalog


def test_create_incident_from_python(make_settings):
    rt = Runtime.build(make_settings())
    document = config_file.parse(
        "services: [{name: redis-prod, criticality: TIER_1_CRITICAL}]\n", {}
    )
    with rt.transaction() as session:
        config_file.apply(session, rt, document)
        service = catalog.get_service(session, ref="redis-prod")
    orchestrator = IncidentOrchestrator(runtime=rt)
    incident = orchestrator.create_incident(
        data={
            "title": "[TEST] Redis Cluster Down",
            "description": "timeouts",
            "service": service,
            "severity": "SEV2_HIGH",
        },
        user="admin@example.com",
        trigger_orchestration=True,
        wait_seconds=2,
    )
    assert incident.short_id.startswith("INC-") and incident.status == "TRIGGERED"
    assert incident.source == "python"
    with pytest.raises(NotFoundError):
        orchestrator.create_incident(
            data={"title": "x", "service": "nope", "severity": "SEV2_HIGH"}
        )
