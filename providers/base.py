"""The provider contract.

Flows never call HTTP themselves: they hand an outbox row to a provider. A notification
provider turns one ``Notification`` for one ``Recipient`` into one outbound call (or a
small fixed sequence of calls) and reports what happened:

* returns a ``DeliveryResult`` on success;
* raises ``RetryableProviderError`` for timeouts, 5xx, 429 (with ``retry_after``);
* raises ``PermanentProviderError`` for everything retrying cannot fix.

Providers are stateless between calls; what a later event must know about an earlier
delivery (the Slack message ``ts`` to edit, the PagerDuty ``dedup_key``) comes back in
``DeliveryResult.data`` and is handed to later sends as ``prior``.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.domain.errors import PermanentProviderError
from providers.guard import AddressPolicy, TargetRefused, parse_host_entry
from providers.http import HttpClient

SEVERITY_EMOJI = {
    "SEV1_CRITICAL": "🔴",
    "SEV2_HIGH": "🟠",
    "SEV3_MEDIUM": "🟡",
    "SEV4_LOW": "🟢",
}
SEVERITY_COLOR = {  # hex RGB, used by Discord embeds, Teams cards, e-mail
    "SEV1_CRITICAL": 0xD32F2F,
    "SEV2_HIGH": 0xF57C00,
    "SEV3_MEDIUM": 0xFBC02D,
    "SEV4_LOW": 0x388E3C,
}
# The outbox sets this around each send: 1 for the first try of a delivery, 2+ for retries.
# Providers whose target has no idempotency key (Slack) use it to reconcile before posting
# again after an ambiguous failure.
delivery_attempt: ContextVar[int] = ContextVar("delivery_attempt", default=1)
# When the outbox row being delivered was first claimed (None outside the outbox): a retry
# looks for its own earlier message from there on (Slack reconciliation, issue 11).
delivery_since: ContextVar[datetime | None] = ContextVar("delivery_since", default=None)

SEVERITY_RANK = {"SEV1_CRITICAL": 1, "SEV2_HIGH": 2, "SEV3_MEDIUM": 3, "SEV4_LOW": 4}

# Incident events the router knows. Providers may word each one differently.
EVENTS = (
    "created",
    "acknowledged",
    "mitigated",
    "severity_changed",
    "resolved",
    "reopened",
    "escalated",
    "status_update",
    "page",
    "test",
)


@dataclass(frozen=True)
class IncidentView:
    """The facts every message about an incident shows, already resolved to text."""

    id: int
    short_id: str
    title: str
    description: str
    severity: str
    status: str
    service_name: str
    team_name: str
    lead_name: str | None
    lead_email: str | None
    incident_url: str
    created_at: datetime
    runbook_url: str | None = None
    lid_url: str | None = None
    war_room_channel_id: str | None = None
    war_room_url: str | None = None
    resolution_summary: str | None = None
    private: bool = False
    # Orchestration step states shown on the announcement: "pending", "done", "failed",
    # "skipped" (not needed for this incident) or "disabled" (not configured).
    lid_state: str = "pending"
    war_room_state: str = "skipped"
    # Lifecycle moments (the LID's {{ACKNOWLEDGED_AT}}, {{RESOLVED_AT}} and durations).
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None

    @property
    def emoji(self) -> str:
        return SEVERITY_EMOJI.get(self.severity, "⚪")

    @property
    def headline(self) -> str:
        return f"{self.emoji} {self.title} - {self.service_name}"


@dataclass(frozen=True)
class Notification:
    """One incident event to tell someone about."""

    event: str
    incident: IncidentView
    text: str | None = None  # extra words: status update, resolution summary, page reason
    actor: str | None = None


@dataclass(frozen=True)
class Recipient:
    """Where a notification goes.

    ``kind`` is one of ``channel`` (a Slack channel id), ``user`` (a Slack user id, DM),
    ``email`` (an address), or ``default`` (the provider's own configured destination:
    a webhook URL, an ntfy topic, the SMS recipients...).
    """

    kind: str
    address: str = ""

    def key(self) -> str:
        return f"{self.kind}:{self.address}"


@dataclass
class DeliveryResult:
    """What a successful send reports. ``data`` is stored and returned as ``prior``."""

    detail: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckResult:
    """Outcome of a provider self-check (``imas doctor``)."""

    ok: bool
    detail: str


class ProviderConfig(BaseModel):
    """Base of every provider's config model: unknown keys are errors.

    Every provider also takes the address guard's per-provider allowances
    (``providers.guard``): ``allow_private_targets: true`` lets this provider reach
    private, loopback, CGNAT and unique-local addresses (like
    ``IMAS_ALLOW_PRIVATE_WEBHOOK_TARGETS`` for all providers); ``allowed_hosts`` lists
    ``host`` or ``host:port`` entries (``[v6]:port`` for IPv6) this provider may reach
    whatever they resolve to, link-local included (unspecified, multicast and reserved
    addresses stay refused).
    """

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    allow_private_targets: bool = False
    allowed_hosts: list[str] = Field(default_factory=list)

    @field_validator("allowed_hosts")
    @classmethod
    def _allowed_hosts(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                parse_host_entry(entry)
            except TargetRefused as exc:
                raise ValueError(
                    f"allowed_hosts entry {exc.message.removeprefix('refused: ')}"
                ) from None
        return value


class NotificationProvider(ABC):
    """One notification channel type (Slack, Discord, e-mail, PagerDuty...).

    Subclasses set ``type`` (the config file's ``type:``), ``config_model`` (validated at
    ``imas config apply``), ``recipient_kinds`` (which ``Recipient.kind`` values they can
    deliver to) and ``supports_dedup`` (the target folds repeats by a key we send, so a
    retry after a lost response never doubles a page).
    """

    type: ClassVar[str]
    config_model: ClassVar[builtins.type[ProviderConfig]]
    recipient_kinds: ClassVar[frozenset[str]] = frozenset({"default"})
    supports_dedup: ClassVar[bool] = False
    secret_keys: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *, name: str, config: ProviderConfig, http: HttpClient) -> None:
        self.name = name
        self.config = config
        # The shared client, or one whose guard adds this provider's own allowances.
        self.http = http.for_provider(
            allow_private=config.allow_private_targets, allowed_hosts=config.allowed_hosts
        )

    @classmethod
    def target_urls(cls, config: ProviderConfig) -> dict[str, str]:
        """The outbound URLs ``config`` names, by config key (for config-time checks)."""
        return {}

    @classmethod
    def refused_targets(
        cls, config: ProviderConfig, policy: AddressPolicy
    ) -> list[tuple[str, TargetRefused]]:
        """(config key, refusal) for every target the address guard refuses without DNS
        (syntax, IP literals, localhost): ``imas config validate`` / ``apply`` report them.
        ``policy`` is the global one; the provider's own allowances are added here."""
        policy = policy.widened(
            allow_private=config.allow_private_targets, allowed_hosts=config.allowed_hosts
        )
        problems: list[tuple[str, TargetRefused]] = []
        for key, url in cls.target_urls(config).items():
            try:
                policy.check_url(url)
            except TargetRefused as exc:
                problems.append((key, exc))
        return problems

    def require_recipient_kind(self, recipient: Recipient) -> None:
        """PermanentProviderError unless this provider can deliver to ``recipient``."""
        if recipient.kind not in self.recipient_kinds:
            raise PermanentProviderError(
                f"{self.type} provider {self.name!r} cannot deliver to recipient kind "
                f"{recipient.kind!r}"
            )

    def default_recipients(self) -> list[Recipient]:
        """Destinations this provider always notifies (its own configured target)."""
        return [Recipient("default")] if "default" in self.recipient_kinds else []

    @abstractmethod
    def send(
        self,
        notification: Notification,
        recipient: Recipient,
        *,
        idempotency_key: str,
        prior: Mapping[str, Any] | None = None,
    ) -> DeliveryResult:
        """Deliver ``notification`` to ``recipient``.

        ``idempotency_key`` is stable across retries of the same delivery; pass it to the
        target where it supports one. ``prior`` is the ``data`` of this provider's first
        successful delivery to the same recipient for the same incident (None for the
        first). Raises RetryableProviderError / PermanentProviderError.
        """

    def check(self) -> CheckResult:
        """Validate credentials against the target where it allows it without side effects."""
        return CheckResult(True, "configuration valid (this provider has no live check)")
