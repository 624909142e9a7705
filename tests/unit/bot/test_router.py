"""The router de-duplicates recipients: a channel gets one announcement whichever SLACK
provider would reach it; filters and privacy decide who else hears."""

from __future__ import annotations

from bot import config_file
from bot.domain.actor import Actor
from bot.flows.declare import DeclareInput, declare
from bot.runtime import Runtime
from storage import outbox as outbox_store

CONFIG = """
teams:
  - {name: SRE Core, slack_channel_id: C0123456789, current_on_call: U0ONCALL1}
services:
  - {name: redis-prod, owner_team: SRE Core}
war_room: {severities: []}
providers:
  - name: Slack A
    type: SLACK
    config: {bot_token: xoxb-a, default_channel: C0123456789}
  - name: Slack B
    type: SLACK
    config: {bot_token: xoxb-b, default_channel: C0123456789}
  - name: Pager
    type: WEBHOOK
    config: {format: pagerduty, routing_key: rk}
    filters: {min_severity: SEV2_HIGH}
"""


def routes_for(make_settings, severity, private=False):
    rt = Runtime.build(make_settings())
    with rt.transaction() as session:
        config_file.apply(session, rt, config_file.parse(CONFIG, {}))
    incident, _ = declare(
        rt,
        data=DeclareInput(title="t", service="redis-prod", severity=severity, private=private),
        actor=Actor("a", "cli"),
    )
    with rt.transaction() as session:
        rows = outbox_store.for_incident(session, incident_id=incident.id, kind="notify")
        return sorted((r.provider_name, r.recipient_kind, r.recipient) for r in rows)


def test_one_announcement_per_channel_across_slack_providers(make_settings):
    assert routes_for(make_settings, "SEV1_CRITICAL") == [
        ("Pager", "default", ""),
        ("Slack A", "channel", "C0123456789"),
        ("Slack A", "user", "U0ONCALL1"),
    ]


def test_filters_and_privacy(make_settings):
    assert routes_for(make_settings, "SEV3_MEDIUM") == [
        ("Slack A", "channel", "C0123456789"),
        ("Slack A", "user", "U0ONCALL1"),
    ]
    assert routes_for(make_settings, "SEV3_MEDIUM", private=True) == [
        ("Slack A", "user", "U0ONCALL1")
    ]
