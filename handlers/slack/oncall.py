"""``/oncall [team]`` and ``/incident oncall [team]``: who is on call now (the schedule
engine, ``bot.flows.oncall``), and ``override @someone 2h [team]``: someone covers.

Both answer ephemerally, before the ack (a few database reads, or one short write)."""

from __future__ import annotations

import re
from concurrent.futures import Executor
from datetime import datetime
from typing import Any

from slack_bolt import Ack, App

from bot.domain.errors import ImasError, InputError
from bot.flows import oncall
from bot.runtime import Runtime
from handlers.slack.common import actor_from, error_text
from providers.slack_blocks import oncall_line
from providers.text import mention_user, slack_escape, slack_unescape
from storage import catalog

MENTION = re.compile(r"^<@(\w+)(?:\|[^>]*)?>\s*(.*)$", re.DOTALL)
OVERRIDE_USAGE = "Usage: `/incident oncall override @someone 2h [team]` (or 30m, 1h30m, 1d)"


def register(app: App, rt: Runtime, background: Executor) -> None:  # noqa: ARG001
    @app.command("/oncall")
    def oncall_command(ack: Ack, body: dict[str, Any]) -> None:
        try:
            ack(text=answer(rt, body, (body.get("text") or "").strip()))
        except ImasError as exc:
            ack(text=error_text(exc))


def answer(rt: Runtime, body: dict[str, Any], rest: str) -> str:
    """The reply to ``[team]`` or ``override @x 2h [team]``. Raises ImasError."""
    first, _, tail = rest.partition(" ")
    if first.lower() == "override":
        return override(rt, body, tail.strip())
    team = slack_unescape(rest).strip() or None
    lines = []
    for item in oncall.on_call(rt, actor=actor_from(body, "command"), team=team):
        line = oncall_line(item.team, item.slack_user_id, item.person)
        if item.until is not None:
            stamp = int(item.until.timestamp())
            line += f" until <!date^{stamp}^{{date_short_pretty}} {{time}}|{item.until:%Y-%m-%d %H:%M} UTC>"
        if item.schedule:
            line += f" _({slack_escape(item.schedule)})_"
        lines.append(line)
    return "*On call*\n" + ("\n".join(lines) if lines else "No teams configured.")


def override(rt: Runtime, body: dict[str, Any], text: str) -> str:
    match = MENTION.match(text)
    if not match:
        return OVERRIDE_USAGE
    user_id, tail = match.group(1), match.group(2).strip()
    duration_text, _, team = tail.partition(" ")
    if not duration_text:
        return OVERRIDE_USAGE
    duration = oncall.parse_duration(duration_text)
    team = slack_unescape(team).strip()
    if not team:
        with rt.reading() as session:
            names = [t.name for t in catalog.list_teams(session)]
        if len(names) != 1:
            raise InputError("Which team? `/incident oncall override @someone 2h <team>`")
        team = names[0]
    result = oncall.create_override(
        rt, actor=actor_from(body, "command"), target=team, person=user_id, duration=duration
    )
    ends = datetime.fromisoformat(result["ends_at"])
    return (
        f"📟 {mention_user(user_id)} is on call for *{slack_escape(result['team'] or result['schedule'])}* "
        f"until <!date^{int(ends.timestamp())}^{{date_short_pretty}} {{time}}|{ends:%Y-%m-%d %H:%M} UTC>."
    )
