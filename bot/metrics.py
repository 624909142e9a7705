"""Prometheus metrics. Gauges that describe stored state are computed at scrape time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from sqlalchemy import func, select

if TYPE_CHECKING:
    from bot.runtime import Runtime

CONTENT_TYPE = CONTENT_TYPE_LATEST
SLACK_REJECTED = Counter(
    "imas_slack_requests_rejected_total", "Slack requests rejected (bad signature)"
)
REQUEST_SECONDS = Histogram(
    "imas_http_request_duration_seconds",
    "HTTP request latency by route",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
ALERTS_RECEIVED = Counter(
    "imas_alerts_received_total", "Alerts received by webhook", ["source", "outcome"]
)


def render(rt: Runtime) -> bytes:
    from storage.models import Incident, OutboxItem

    registry = CollectorRegistry()
    incidents = Gauge(
        "imas_incidents",
        "Incidents by status and severity",
        ["status", "severity"],
        registry=registry,
    )
    outbox = Gauge(
        "imas_outbox_items",
        "Outbox rows by kind, provider and state",
        ["kind", "provider", "state"],
        registry=registry,
    )
    oldest = Gauge(
        "imas_outbox_oldest_pending_seconds",
        "Age of the oldest unfinished outbox row",
        registry=registry,
    )
    with rt.transaction() as session:
        for status, severity, count in session.execute(
            select(Incident.status, Incident.severity, func.count()).group_by(
                Incident.status, Incident.severity
            )
        ):
            incidents.labels(status, severity).set(count)
        for kind, provider, state, count in session.execute(
            select(
                OutboxItem.kind, OutboxItem.provider_name, OutboxItem.state, func.count()
            ).group_by(OutboxItem.kind, OutboxItem.provider_name, OutboxItem.state)
        ):
            outbox.labels(kind, provider or "", state).set(count)
        first = session.scalar(
            select(func.min(OutboxItem.created_at)).where(
                OutboxItem.state.in_(("pending", "failed", "in_flight"))
            )
        )
        oldest.set((rt.clock() - first).total_seconds() if first else 0)
    return generate_latest(registry) + generate_latest(DEFAULT_REGISTRY)
