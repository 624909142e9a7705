"""TEAMS: a Microsoft Teams incoming webhook (Workflows/Power Automate or legacy connector).

Config keys: ``webhook_url`` (secret: the URL's ``sig=`` / path carries the credential).

Each send posts one message with an Adaptive Card (version 1.4): the summary line, a
FactSet (severity, status, service, team, lead), the notification text and description,
and ``Action.OpenUrl`` buttons (incident, LID, runbook, war room). The card builder
:func:`teams_message` is reused by the WEBHOOK provider's ``format: teams``.

TextBlocks and FactSet values render a markdown subset (no HTML): every user- or
alert-supplied string goes through :func:`providers.text.teams_escape`, which breaks
``[x](y)`` link syntax and ``<at>``/``<url>`` tags, so the only links are the
``Action.OpenUrl`` buttons built here from URLs. Nothing in the card renders HTML, so no
HTML escaping is needed (and would show as literal ``&lt;``).

Idempotency: Teams webhooks take no idempotency key, so delivery is at-least-once (a retry
after a lost response posts a second card). Errors: HTTP 429 and 5xx, timeouts and
connection failures raise RetryableProviderError; other 4xx PermanentProviderError. Legacy
connectors answer HTTP 200 with an error text (``... returned HTTP error 429 ...``) when
throttled or failing: that text is classified the same way.

There is no side-effect-free way to test a Teams webhook, so ``check()`` only validates
the configuration.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from bot.domain.errors import PermanentProviderError, RetryableProviderError
from providers.base import (
    DeliveryResult,
    Notification,
    NotificationProvider,
    ProviderConfig,
    Recipient,
)
from providers.messages import (
    WebhookUrlConfig,
    extra_text,
    facts,
    is_web_url,
    links,
    summary_line,
    text_heading,
)
from providers.text import fit, one_line, teams_escape

CARD_TEXT_LIMIT = 3000
_LEGACY_ERROR = re.compile(r"HTTP error (\d{3})")


def _card_color(notification: Notification) -> str:
    if notification.event == "resolved":
        return "Good"
    return {
        "SEV1_CRITICAL": "Attention",
        "SEV2_HIGH": "Attention",
        "SEV3_MEDIUM": "Warning",
    }.get(notification.incident.severity, "Default")


def adaptive_card(notification: Notification) -> dict[str, Any]:
    """The Adaptive Card (v1.4) describing ``notification``."""
    inc = notification.incident
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": summary_line(notification, escape=teams_escape),
            "weight": "Bolder",
            "size": "Medium",
            "color": _card_color(notification),
            "wrap": True,
        },
        {
            "type": "FactSet",
            "facts": [
                {"title": label, "value": teams_escape(value)}
                for label, value in [("Title", one_line(inc.title)), *facts(notification)]
            ],
        },
    ]
    extra = extra_text(notification)
    if extra:
        body.append(
            {
                "type": "TextBlock",
                "text": f"**{text_heading(notification.event)}:** "
                + fit(extra, CARD_TEXT_LIMIT, teams_escape),
                "wrap": True,
            }
        )
    if inc.description:
        body.append(
            {
                "type": "TextBlock",
                "text": fit(inc.description, CARD_TEXT_LIMIT, teams_escape),
                "wrap": True,
                "isSubtle": True,
            }
        )
    actions = [
        {
            "type": "Action.OpenUrl",
            "title": "View incident" if label == "Incident" else label,
            "url": url,
        }
        for label, url in links(inc)
        if is_web_url(url)
    ]
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
        "actions": actions,
    }


def teams_message(notification: Notification) -> dict[str, Any]:
    """The webhook body: a ``message`` carrying the Adaptive Card as its one attachment."""
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": adaptive_card(notification),
            }
        ],
    }


def check_legacy_reply(text: str) -> None:
    """Raise for a legacy connector's HTTP-200 error reply (``... HTTP error 429 ...``)."""
    match = _LEGACY_ERROR.search(text or "")
    if not match:
        return
    status = int(match.group(1))
    if status == 429 or status >= 500:
        raise RetryableProviderError(
            f"Teams connector reported HTTP error {status}", code=f"HTTP {status}"
        )
    raise PermanentProviderError(
        f"Teams connector reported HTTP error {status}",
        code=f"HTTP {status}",
        hint="check the Teams webhook URL",
    )


class TeamsConfig(WebhookUrlConfig):
    """TEAMS config. ``webhook_url``: the Workflows or connector URL (a secret)."""


class TeamsProvider(NotificationProvider):
    """Posts Adaptive Cards to a Teams channel webhook (recipient kind ``default``)."""

    type = "TEAMS"
    config_model = TeamsConfig
    recipient_kinds = frozenset({"default"})
    supports_dedup = False
    secret_keys = frozenset({"webhook_url"})

    @property
    def settings(self) -> TeamsConfig:
        return cast(TeamsConfig, self.config)

    @classmethod
    def target_urls(cls, config: ProviderConfig) -> dict[str, str]:
        return {"webhook_url": cast(TeamsConfig, config).webhook_url.get_secret_value()}

    def send(
        self,
        notification: Notification,
        recipient: Recipient,
        *,
        idempotency_key: str,  # noqa: ARG002 - contract argument
        prior: Mapping[str, Any] | None = None,  # noqa: ARG002 - contract argument
    ) -> DeliveryResult:
        """Post one card. At-least-once; raises Retryable/PermanentProviderError."""
        self.require_recipient_kind(recipient)
        response = self.http.request(
            "POST",
            self.settings.webhook_url.get_secret_value(),
            json=teams_message(notification),
        )
        check_legacy_reply(response.text)
        return DeliveryResult(detail=f"Teams card posted (HTTP {response.status_code})")
