"""Events API listeners: 📌 reactions in war rooms, the App Home tab."""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any

from slack_bolt import App

from bot.runtime import Runtime


def register(app: App, rt: Runtime, background: Executor) -> None:
    @app.event("app_mention")
    def ignore_mentions(body: dict[str, Any]) -> None:
        return None
