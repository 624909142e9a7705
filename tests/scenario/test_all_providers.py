"""Issue 3: a SEV1 on the seed's service with every provider type configured, delivered
once per recipient; resolve events; a 10-minute outage (simulated time) loses nothing and
doubles no page; a misconfigured provider is reported without hurting the others."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot import config_file
from bot.doctor import run_checks
from bot.domain.actor import Actor
from bot.flows import lifecycle
from bot.flows.declare import DeclareInput, declare
from bot.presenter import incident_json
from bot.runtime import Runtime
from bot.steps import make_worker
from storage import incidents as store
from tests.conftest import BOT_TOKEN, SEED_CHANNEL
from tests.fakes.receivers import HttpRecorder, Reply
from tests.fakes.smtp import SmtpInbox

ACTOR = Actor(label="alice", source="cli")


def config_text(
    rec: HttpRecorder, smtp: SmtpInbox, slack_url: str, *, opsgenie_key: str = "og-key"
) -> str:
    return f"""
teams:
  - name: SRE Core
    slack_channel_id: {SEED_CHANNEL}
    email: sre@example.com
    current_on_call: U0ONCALL1
services:
  - name: redis-prod
    owner_team: SRE Core
    criticality: TIER_1_CRITICAL
    runbook_url: https://wiki.example.com/runbooks/redis
impact_scopes:
  - name: Security
    notify_emails: [ciso@example.com]
providers:
  - name: Slack Production
    type: SLACK
    config: {{bot_token: "{BOT_TOKEN}", default_channel: {SEED_CHANNEL}, endpoint: "{slack_url}"}}
  - name: Discord
    type: DISCORD
    config: {{webhook_url: "{rec.url("/api/webhooks/1/discord-token")}"}}
  - name: Teams
    type: TEAMS
    config: {{webhook_url: "{rec.url("/teams/hook")}"}}
  - name: Mail
    type: EMAIL
    config: {{host: 127.0.0.1, port: {smtp.port}, username: imas, password: smtp-secret, use_tls: true,
              from_email: "IMAS <incidents@example.com>", ca_file: "{smtp.ca_file}"}}
  - name: PagerDuty
    type: WEBHOOK
    config: {{format: pagerduty, routing_key: pd-routing-key-0123456789abcdef, endpoint: "{rec.base_url}/pd"}}
    filters: {{min_severity: SEV2_HIGH}}
  - name: Opsgenie
    type: WEBHOOK
    config: {{format: opsgenie, api_key: "{opsgenie_key}", endpoint: "{rec.base_url}/og"}}
  - name: Phone push
    type: NTFY
    config: {{server: "{rec.base_url}/ntfy", topic: imas-alerts}}
  - name: SMS
    type: SMS
    config: {{application_key: ak, application_secret: as, consumer_key: ck, service_name: sms-1,
              sender: IMAS, recipients: ["+33600000000"], endpoint: "{rec.base_url}/ovh"}}
"""


@pytest.fixture
def receivers(fake_slack: Any) -> Any:
    rec = HttpRecorder().start()
    rec.default(
        "/pd/v2/enqueue", Reply(202, body={"status": "success", "message": "Event processed"})
    )
    rec.default(
        "/og/v2/alerts", Reply(202, body={"result": "Request will be processed", "requestId": "r1"})
    )
    smtp = SmtpInbox().start()
    yield rec, smtp
    rec.stop()
    smtp.stop()


def build(
    make_settings: Any, rec: HttpRecorder, smtp: SmtpInbox, fake_slack: Any, **kwargs: Any
) -> Runtime:
    rt = Runtime.build(make_settings(slack_api_url=fake_slack.url))
    document = config_file.parse(
        config_text(rec, smtp, fake_slack.url, **kwargs), {}, allow_private=True
    )
    with rt.transaction() as session:
        config_file.apply(session, rt, document)
    fake_slack.add_user("U0ONCALL1", "oncall", email="oncall@example.com")
    return rt


def declare_sev1(rt: Runtime) -> str:
    incident, _ = declare(
        rt,
        data=DeclareInput(
            title="Redis primary unreachable",
            service="redis-prod",
            severity="SEV1_CRITICAL",
            scopes=["Security"],
        ),
        actor=ACTOR,
    )
    return incident.short_id


def deliveries(rt: Runtime, short_id: str) -> list[dict[str, Any]]:
    with rt.transaction() as session:
        found = store.get_incident(session, ref=short_id)
        assert found is not None
        return list(incident_json(session, rt, found, detail=True)["deliveries"])


def test_every_provider_once_then_resolve(make_settings, fake_slack, receivers):
    rec, smtp = receivers
    rt = build(make_settings, rec, smtp, fake_slack)
    short_id = declare_sev1(rt)
    worker = make_worker(rt)
    worker.drain()
    states = {
        (d["provider"], d["recipient"]): d["state"]
        for d in deliveries(rt, short_id)
        if d["kind"] == "notify"
    }
    assert set(states.values()) == {"done"}, states
    assert (
        len(rec.requests_for("/api/webhooks/1/discord-token")),
        len(rec.requests_for("/teams/hook")),
        len(rec.requests_for("/pd/v2/enqueue")),
        len(rec.requests_for("/og/v2/alerts")),
        len(rec.requests_for("/ntfy/")),
        len(rec.requests_for("/ovh/sms/sms-1/jobs")),
    ) == (1, 1, 1, 1, 1, 1)
    assert sorted(m["To"] for m in smtp.messages) == ["ciso@example.com", "sre@example.com"]
    top = [m for m in fake_slack.messages(SEED_CHANNEL) if not m.get("thread_ts")]
    assert len(top) == 1  # team channel == provider default channel: one announcement
    assert fake_slack.dm_channel("U0ONCALL1") is not None
    trigger = rec.requests_for("/pd/v2/enqueue")[0].json
    assert trigger["event_action"] == "trigger" and trigger["payload"]["severity"] == "critical"

    with rt.transaction() as session:
        incident = lifecycle.get_or_404(session, short_id)
        lifecycle.change_status(
            session,
            rt,
            incident=incident,
            status="RESOLVED",
            actor=ACTOR,
            summary="Failover to replica",
        )
    worker.drain()
    pd = [r.json for r in rec.requests_for("/pd/v2/enqueue")]
    assert [e["event_action"] for e in pd] == ["trigger", "resolve"]
    assert pd[0]["dedup_key"] == pd[1]["dedup_key"]
    close = [
        r for r in rec.requests if r.path.startswith("/og/v2/alerts/") and r.path.endswith("/close")
    ]
    assert len(close) == 1 and close[0].query.get("identifierType") == ["alias"]
    thread = [
        m for m in fake_slack.messages(SEED_CHANNEL) if m.get("thread_ts") not in (None, m["ts"])
    ]
    assert any("Resolved" in m.get("text", "") for m in thread)
    parents = [
        m for m in fake_slack.messages(SEED_CHANNEL) if m.get("thread_ts") in (None, m["ts"])
    ]
    assert len(parents) == 1 and "RESOLVED" in str(parents[0]["blocks"])


def test_ten_minute_outage_loses_nothing_and_doubles_no_page(make_settings, fake_slack, receivers):
    rec, smtp = receivers
    rt = build(make_settings, rec, smtp, fake_slack)
    start = datetime.now(UTC)
    now = [start]
    rt.clock = lambda: now[0]
    # PagerDuty and Discord down for ten simulated minutes.
    rec.default("/pd/v2/enqueue", Reply(500, body="down"))
    rec.default("/api/webhooks/1/discord-token", Reply(503, body="down"))
    short_id = declare_sev1(rt)
    worker = make_worker(rt)
    while now[0] < start + timedelta(minutes=10):
        worker.run_once(now=now[0])
        now[0] += timedelta(seconds=10)
    during = {d["provider"]: d for d in deliveries(rt, short_id) if d["kind"] == "notify"}
    # Still queued (retrying, or waiting while their circuit is open), never dropped.
    assert during["PagerDuty"]["state"] in ("failed", "pending")
    assert during["Discord"]["state"] in ("failed", "pending")
    assert 5 <= during["PagerDuty"]["attempts"] <= 12
    failed_calls = len(rec.requests_for("/api/webhooks/1/discord-token"))
    # Recovery; PagerDuty's first answer after it is lost (accepted, but we never hear).
    rec.script("/pd/v2/enqueue", [Reply(drop=True)])
    rec.default("/pd/v2/enqueue", Reply(202, body={"status": "success"}))
    rec.default("/api/webhooks/1/discord-token", Reply(204, body=b""))
    while now[0] < start + timedelta(minutes=25):
        worker.run_once(now=now[0])
        now[0] += timedelta(seconds=10)
    rows = {d["provider"]: d for d in deliveries(rt, short_id) if d["kind"] == "notify"}
    assert all(d["state"] == "done" for d in rows.values()), {
        k: (v["state"], v["attempts"], v["last_error"]) for k, v in rows.items()
    }
    pd = [r.json for r in rec.requests_for("/pd/v2/enqueue")]
    assert len({e["dedup_key"] for e in pd}) == 1  # every retry folds into one PagerDuty alert
    assert {e["event_action"] for e in pd} == {"trigger"}
    assert len(smtp.messages) == 2
    assert (
        len(rec.requests_for("/api/webhooks/1/discord-token")) - failed_calls == 1
    )  # delivered once


def test_misconfigured_provider_reported_others_unaffected(make_settings, fake_slack, receivers):
    rec, smtp = receivers
    rt = build(make_settings, rec, smtp, fake_slack)
    rec.default("/og/v2/alerts", Reply(401, body={"message": "Key is not valid"}))
    rec.default("/og/v2/alerts", Reply(401, body={"message": "Key is not valid"}))
    short_id = declare_sev1(rt)
    make_worker(rt).drain()
    rows = {d["provider"]: d for d in deliveries(rt, short_id) if d["kind"] == "notify"}
    assert rows["Opsgenie"]["state"] == "dead" and "401" in rows["Opsgenie"]["last_error"]
    assert rows["Opsgenie"]["attempts"] == 1
    assert all(d["state"] == "done" for name, d in rows.items() if name != "Opsgenie")
    with rt.transaction() as session:
        found = store.get_incident(session, ref=short_id)
        timeline = incident_json(session, rt, found, detail=True)["timeline"]
    assert any(t["type"] == "NOTIFICATION_FAILED" and "Opsgenie" not in "" for t in timeline)
    fake_slack.valid_tokens.clear()  # the Slack token was revoked
    checks = {c.name: c for c in run_checks(rt)}
    assert not checks["provider Slack Production (SLACK)"].ok
    assert "regenerate" in checks["provider Slack Production (SLACK)"].detail


def test_dead_provider_opens_its_circuit_and_spares_the_others(
    make_settings, fake_slack, receivers
):
    rec, smtp = receivers
    rt = build(make_settings, rec, smtp, fake_slack)
    rec.default("/pd/v2/enqueue", Reply(503, body="down"))
    start = datetime.now(UTC)
    now = [start]
    rt.clock = lambda: now[0]
    worker = make_worker(rt)
    short_ids = [declare_sev1(rt) for _ in range(8)]
    for _ in range(60):
        worker.run_once(now=now[0])
        now[0] += timedelta(seconds=5)
    assert rt.breakers.is_open("PagerDuty")
    # Five failures opened the circuit; then one probe per 60 s cooldown over these 5
    # simulated minutes (without it, 8 deliveries retrying would make ~50 calls).
    assert len(rec.requests_for("/pd/v2/enqueue")) <= 5 + 300 // 60 + 1
    for short_id in short_ids:
        rows = {d["provider"]: d for d in deliveries(rt, short_id) if d["kind"] == "notify"}
        assert all(d["state"] == "done" for name, d in rows.items() if name != "PagerDuty")
        assert rows["PagerDuty"]["state"] in ("pending", "failed")
