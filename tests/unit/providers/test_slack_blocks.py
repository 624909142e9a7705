"""The seed's announcement and the declare modal are valid Block Kit."""

from __future__ import annotations

from dataclasses import replace

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from providers.slack_blocks import announcement_blocks, declare_modal, war_room_summary_blocks
from tests.unit.providers.conftest import make_incident


def valid(blocks):
    assert len(blocks) <= 50
    parsed = Block.parse_all(blocks)
    assert None not in parsed
    for block in parsed:
        block.to_dict()


@pytest.mark.parametrize(
    "severity,emoji",
    [("SEV1_CRITICAL", "🔴"), ("SEV2_HIGH", "🟠"), ("SEV3_MEDIUM", "🟡"), ("SEV4_LOW", "🟢")],
)
def test_announcement_header_and_fields(severity, emoji):
    view = make_incident(severity=severity)
    blocks = announcement_blocks(view)
    valid(blocks)
    assert blocks[0]["text"]["text"] == f"{emoji} Redis primary unreachable - redis-prod"
    fields = " ".join(f["text"] for f in blocks[1]["fields"])
    for label in ("Severity:", "Status:", "Service:", "Team:"):
        assert label in fields
    text = str(blocks)
    assert (
        "LID Document" in text
        and "Runbook" in text
        and "War Room" in text
        and "View Incident" in text
    )


def test_buttons_follow_the_status():
    triggered = str(announcement_blocks(make_incident(status="TRIGGERED")))
    assert "Acknowledge" in triggered and "Resolve" in triggered
    resolved = str(
        announcement_blocks(make_incident(status="RESOLVED", resolution_summary="fixed"))
    )
    assert "Acknowledge" not in resolved and "Reopen" in resolved and "fixed" in resolved
    assert "Join war room" not in str(war_room_summary_blocks(make_incident()))


def test_huge_texts_stay_within_limits():
    view = replace(make_incident(), title="x" * 500, description="y" * 10000)
    valid(announcement_blocks(view))


def test_declare_modal_is_a_valid_view():
    modal = declare_modal(
        services=[f"svc-{i}" for i in range(150)],
        scopes=["Security", "Legal"],
        lead_user_id="U0ALICE01",
        private_metadata="{}",
        title="t" * 300,
    )
    View(**modal).to_dict()
    assert [b["block_id"] for b in modal["blocks"]] == [
        "title",
        "description",
        "service",
        "severity",
        "scopes",
        "private",
        "lead",
    ]
