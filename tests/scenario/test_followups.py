"""Issue 15: follow-up actions from ``/incident followup``, tracked in IMAS and listed in
the post-mortem draft's action items; bad input writes nothing."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from bot import postmortem
from storage import incidents as store
from storage.models import FollowUp, OutboxItem, TimelineEvent
from tests.scenario.conftest import wait_until
from tests.scenario.test_seed_guide import apply_seed_config, declare_through_modal


def test_followup_command(tmp_path, database_url, start_server, driver, fake_slack):
    apply_seed_config(tmp_path, database_url)
    server = start_server()
    slack = driver(server)
    declare_through_modal(slack, fake_slack)

    def incident() -> str | None:
        with server.rt.transaction() as session:
            rows = store.list_incidents(session)[1]
            return rows[0].short_id if rows else None

    short_id = wait_until(incident, message="incident declared")

    def settled() -> bool:
        with server.rt.transaction() as session:
            return not session.scalar(
                select(func.count()).select_from(OutboxItem).where(OutboxItem.state != "done")
            )

    wait_until(settled, message="orchestration finished")

    def counts() -> tuple[int, int]:
        with server.rt.transaction() as session:
            return (
                session.scalar(select(func.count()).select_from(FollowUp)) or 0,
                session.scalar(select(func.count()).select_from(TimelineEvent)) or 0,
            )

    before = counts()
    bad = slack.slash(f"followup Add disk alerts due 2030-02-31 {short_id}")
    assert bad.status_code == 200 and "is not a date" in bad.text
    usage = slack.slash(f"followup <@U0ONCALL1> {short_id}")
    assert "Usage: `/incident followup" in usage.text
    assert counts() == before

    answer = slack.slash(
        f"followup Add disk-full alerts &amp; runbook <@U0ONCALL1|oncall> due 2030-01-31 {short_id}"
    )
    assert answer.status_code == 200 and f"Follow-up #1 added to {short_id}" in answer.text
    answer = slack.slash(f"followup Review the failover drill {short_id}")
    assert f"Follow-up #2 added to {short_id}" in answer.text

    with server.rt.transaction() as session:
        items = session.scalars(select(FollowUp).order_by(FollowUp.id)).all()
        assert [(f.title, f.due_date, f.state) for f in items] == [
            ("Add disk-full alerts & runbook", date(2030, 1, 31), "open"),
            ("Review the failover drill", None, "open"),
        ]
        assert items[0].owner is not None and items[0].owner.slack_user_id == "U0ONCALL1"
        assert items[1].owner is None
        events = [
            e.message
            for e in store.timeline(session, incident_id=items[0].incident_id)
            if e.type == "FOLLOWUP_ADDED"
        ]
        assert events[1] == "Follow-up #2: Review the failover drill"
        assert events[0].startswith("Follow-up #1: Add disk-full alerts & runbook (owner ")
        assert events[0].endswith(", due 2030-01-31)")
        text = postmortem.to_markdown(
            postmortem.build(session, store.get_incident(session, ref=short_id))
        )
    done = slack.slash(f"followup done #2 {short_id}")
    assert "Follow-up #2 is done." in done.text
    assert "already done" in slack.slash(f"followup done 2 {short_id}").text
    assert "No follow-up #9" in slack.slash(f"followup done 9 {short_id}").text
    with server.rt.transaction() as session:
        text = postmortem.to_markdown(
            postmortem.build(session, store.get_incident(session, ref=short_id))
        )
    action_items = text.split("## Action items\n\n", 1)[1]
    assert action_items.startswith("- [ ] \\#1 Add disk-full alerts & runbook — owner ")
    assert "- [x] \\#2 Review the failover drill\n" in action_items
