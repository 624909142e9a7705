"""Slack listeners (Bolt). ``register`` wires them onto the app once, at start-up."""

from __future__ import annotations

from concurrent.futures import Executor

from slack_bolt import App

from bot.runtime import Runtime
from handlers.slack import actions, commands, events, home, reminders, shortcuts, views
from handlers.slack import oncall as oncall_command


def register(app: App, rt: Runtime, background: Executor) -> None:
    commands.register(app, rt, background)
    views.register(app, rt, background)
    actions.register(app, rt, background)
    events.register(app, rt, background)
    home.register(app, rt, background)
    shortcuts.register(app, rt, background)
    reminders.register(app, rt, background)
    oncall_command.register(app, rt, background)
