"""Who does something, whatever the door: one type for a Slack user, an API token or user,
the CLI's local operator, an alert webhook and IMAS itself."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from bot.domain.enums import AccessRole


class Door(StrEnum):
    """Where an act came in (the audit log's ``door``)."""

    SLACK = "slack"
    API = "api"
    WEB = "web"
    CLI = "cli"
    WEBHOOK = "webhook"
    PYTHON = "python"
    SYSTEM = "system"


# Actor.source values (kept in timeline ``source`` columns since the first release) → door.
_DOOR_OF_SOURCE = {"scheduler": Door.SYSTEM}


@dataclass(frozen=True)
class Actor:
    """Who acts, and from where.

    ``source`` is the door as written in timeline rows (``slack``, ``api``, ``web``, ``cli``,
    ``webhook``, ``python``, ``scheduler``); ``via`` says how within it (button, command,
    modal, rest…). ``role`` is the IMAS access role when the door knows it (API tokens,
    the CLI, IMAS itself); for Slack users it is ``None`` and the access policy looks it up
    from the configuration (``permissions:``) inside the flow's transaction. ``ref`` is a
    stable identity of the caller (``slack:U123``, ``token:7``, ``user:alice``, ``cli``),
    used to scope idempotency keys and in the audit log. ``request_id`` ties the act to the
    request that carried it (the audit log's ``request_id``).
    """

    label: str
    source: str
    slack_user_id: str | None = None
    email: str | None = None
    via: str | None = None
    role: AccessRole | None = None
    ref: str | None = None
    request_id: str | None = None

    @property
    def door(self) -> Door:
        found = _DOOR_OF_SOURCE.get(self.source)
        if found is not None:
            return found
        try:
            return Door(self.source)
        except ValueError:
            return Door.SYSTEM

    @property
    def kind(self) -> str:
        """The audit log's ``actor_kind``."""
        if self.door is Door.SLACK:
            return "slack_user"
        if self.door in (Door.API, Door.WEB):
            return "api_user" if (self.ref or "").startswith("user:") else "api_token"
        if self.door in (Door.CLI, Door.WEBHOOK):
            return self.door.value
        return "system"  # IMAS itself, or Python code calling it (bot.orchestrator)

    @property
    def identity(self) -> str:
        """``ref`` when the door gave one, else a best effort from what is known."""
        if self.ref:
            return self.ref
        if self.slack_user_id:
            return f"slack:{self.slack_user_id}"
        if self.email:
            return f"email:{self.email.lower()}"
        return f"{self.source}:{self.label}"

    @property
    def audit_label(self) -> str:
        return f"<@{self.slack_user_id}>" if self.slack_user_id else self.label

    @property
    def origin(self) -> str:
        return f"{self.source}:{self.via}" if self.via else self.source

    def with_role(self, role: AccessRole) -> Actor:
        return replace(self, role=role)


SYSTEM = Actor(label="IMAS", source="scheduler", role=AccessRole.ADMIN, ref="system")
