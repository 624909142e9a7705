"""What every flow shares: who acts, and how to resolve people."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from storage import catalog
from storage.models import Person

SOURCES = ("slack", "api", "cli", "webhook", "python", "scheduler")


@dataclass(frozen=True)
class Actor:
    """Who does something, and from where (``source``: slack, api, cli, webhook, python,
    scheduler). ``via`` says how within the source (button, command, modal...)."""

    label: str
    source: str
    slack_user_id: str | None = None
    email: str | None = None
    via: str | None = None

    def person(self, session: Session) -> Person | None:
        if self.slack_user_id:
            return catalog.ensure_person(
                session, ref=self.slack_user_id, email=self.email, display_name=self.label
            )
        if self.email:
            return catalog.ensure_person(session, ref=self.email, display_name=self.label)
        return None

    @property
    def audit_label(self) -> str:
        who = f"<@{self.slack_user_id}>" if self.slack_user_id else self.label
        return who

    @property
    def origin(self) -> str:
        return f"{self.source}:{self.via}" if self.via else self.source


SYSTEM = Actor(label="IMAS", source="scheduler")
