"""Slack mrkdwn rendered for a terminal (``imas demo``)."""

from __future__ import annotations

import pytest

from handlers.terminal import boxed, display_width, mrkdwn_to_text


@pytest.mark.parametrize(
    ("mrkdwn", "text"),
    [
        ("<https://wiki.example.com/r|Runbook>", "Runbook (https://wiki.example.com/r)"),
        ("<https://example.com>", "https://example.com"),
        ("War Room: <#C0123456789>", "War Room: #sre-core"),
        ("<#C0UNKNOWN1>", "#C0UNKNOWN1"),
        ("<#C0123456789|war-room>", "#war-room"),
        ("lead <@U0ALICE01|alice>", "lead @alice"),
        ("<!here> <!subteam^S1|@sre>", "@here @sre"),
        ("*Severity:* SEV1 &lt;b&gt; &amp;", "Severity: SEV1 <b> &"),
    ],
)
def test_mrkdwn_to_text(mrkdwn: str, text: str) -> None:
    names = {"C0123456789": "sre-core"}
    assert mrkdwn_to_text(mrkdwn, channel_name=names.get) == text


def test_boxes_fit_80_columns_with_wide_characters() -> None:
    lines = ["🟠 " + "word " * 40, "• 📋 short", ""]
    box = boxed("#sre-core", lines, width=80).splitlines()
    widths = {display_width(line) for line in box}
    assert widths == {max(widths)} and max(widths) <= 80
    assert display_width("🟠a") == 3 and display_width("e\u0301") == 1


def test_progress_spins_on_a_terminal_and_clears_its_line(capsys) -> None:
    from handlers.terminal import Progress
    from tests.scenario.conftest import wait_until

    with Progress("doctor", tty=True) as progress:
        progress.step("database")
        seen: list[str] = []

        def spun() -> bool:
            seen.append(capsys.readouterr().err)
            return "doctor: database" in "".join(seen)

        wait_until(spun, "a spinner frame")
    seen.append(capsys.readouterr().err)
    written = "".join(seen)
    assert written.startswith("\r") and written.endswith("\r\x1b[K")
    assert "\n" not in written  # one line, redrawn in place
