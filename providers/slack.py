"""SLACK notification provider: the incident announcement in channels, DMs to people.

Per (incident, channel) there is one top-level announcement, posted for the first event
and edited in place for later ones, each later event also adding a threaded reply. The
first post carries Slack message metadata (``imas_delivery`` with the idempotency key) so
a retry after an ambiguous failure (timeout, lost response) finds its own message in the
channel history instead of posting twice.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import SecretStr

from bot.domain.errors import PermanentProviderError
from providers.base import (
    CheckResult,
    DeliveryResult,
    Notification,
    NotificationProvider,
    ProviderConfig,
    Recipient,
    delivery_attempt,
)
from providers.http import HttpClient
from providers.slack_api import SlackApi
from providers.slack_blocks import announcement_blocks, dm_blocks, event_line, fallback_text

METADATA_EVENT = "imas_delivery"


class SlackConfig(ProviderConfig):
    bot_token: SecretStr
    default_channel: str | None = None
    endpoint: str = "https://slack.com/api/"


class SlackProvider(NotificationProvider):
    type: ClassVar[str] = "SLACK"
    config_model: ClassVar[builtins.type[ProviderConfig]] = SlackConfig
    recipient_kinds: ClassVar[frozenset[str]] = frozenset({"channel", "user", "default"})
    secret_keys: ClassVar[frozenset[str]] = frozenset({"bot_token"})

    def __init__(self, *, name: str, config: ProviderConfig, http: HttpClient) -> None:
        super().__init__(name=name, config=config, http=http)
        assert isinstance(config, SlackConfig)
        self.slack_config = config
        endpoint = config.endpoint if config.endpoint.endswith("/") else config.endpoint + "/"
        self.api = SlackApi(
            token=config.bot_token.get_secret_value(),
            base_url=endpoint,
            timeout=http.timeout[1],
            policy=self.http.policy,
        )

    @classmethod
    def target_urls(cls, config: ProviderConfig) -> dict[str, str]:
        assert isinstance(config, SlackConfig)
        return {"endpoint": config.endpoint}

    def default_recipients(self) -> list[Recipient]:
        if self.slack_config.default_channel:
            return [Recipient("channel", self.slack_config.default_channel)]
        return []

    def send(
        self,
        notification: Notification,
        recipient: Recipient,
        *,
        idempotency_key: str,
        prior: Mapping[str, Any] | None = None,
    ) -> DeliveryResult:
        if recipient.kind == "user":
            return self._send_dm(notification, recipient.address)
        if recipient.kind == "default":
            if not self.slack_config.default_channel:
                raise PermanentProviderError("no default_channel configured for this provider")
            recipient = Recipient("channel", self.slack_config.default_channel)
        if recipient.kind != "channel":
            raise PermanentProviderError(f"SLACK cannot deliver to {recipient.kind!r} recipients")
        channel = recipient.address
        if prior and prior.get("ts"):
            return self._follow_up(notification, channel, str(prior["ts"]))
        return self._announce(notification, channel, idempotency_key)

    def _announce(self, notification: Notification, channel: str, key: str) -> DeliveryResult:
        view = notification.incident
        if delivery_attempt.get() > 1:
            existing = self._find_own_message(channel, key)
            if existing:
                return DeliveryResult(
                    f"announcement already in {channel} (ts {existing})",
                    {"ts": existing, "channel": channel},
                )
        data = self.api.call(
            "chat.postMessage",
            channel=channel,
            text=fallback_text(view),
            blocks=announcement_blocks(view),
            unfurl_links=False,
            metadata={
                "event_type": METADATA_EVENT,
                "event_payload": {"key": key, "incident": view.short_id},
            },
        )
        ts = str(data.get("ts", ""))
        return DeliveryResult(
            f"posted to Slack channel {channel} (ts {ts})",
            {"ts": ts, "channel": str(data.get("channel", channel))},
        )

    def _follow_up(self, notification: Notification, channel: str, ts: str) -> DeliveryResult:
        view = notification.incident
        self.api.call(
            "chat.update",
            channel=channel,
            ts=ts,
            text=fallback_text(view),
            blocks=announcement_blocks(view),
        )
        reply = self.api.call(
            "chat.postMessage",
            channel=channel,
            thread_ts=ts,
            text=event_line(notification.event, view, notification.text, notification.actor),
        )
        return DeliveryResult(
            f"updated announcement in {channel} and replied in thread",
            {"ts": ts, "channel": channel, "reply_ts": str(reply.get("ts", ""))},
        )

    def _send_dm(self, notification: Notification, user_id: str) -> DeliveryResult:
        if "@" in user_id:
            found = self.api.call("users.lookupByEmail", email=user_id)
            user_id = str((found.get("user") or {}).get("id") or "")
            if not user_id:
                raise PermanentProviderError(
                    "no Slack user for that e-mail address", code="users_not_found"
                )
        view = notification.incident
        line = event_line(notification.event, view, notification.text, notification.actor)
        data = self.api.call(
            "chat.postMessage",
            channel=user_id,
            text=line,
            blocks=dm_blocks(line, view),
            unfurl_links=False,
        )
        return DeliveryResult(
            f"sent Slack DM to {user_id}",
            {"ts": str(data.get("ts", "")), "channel": str(data.get("channel", ""))},
        )

    def _find_own_message(self, channel: str, key: str) -> str | None:
        data = self.api.call(
            "conversations.history", channel=channel, limit=50, include_all_metadata=True
        )
        for message in data.get("messages", []):
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == METADATA_EVENT and payload.get("key") == key:
                return str(message.get("ts"))
        return None

    def update_announcement(self, channel: str, ts: str, notification: Notification) -> None:
        """Re-render an existing announcement in place (idempotent)."""
        view = notification.incident
        self.api.call(
            "chat.update",
            channel=channel,
            ts=ts,
            text=fallback_text(view),
            blocks=announcement_blocks(view),
        )

    def check(self) -> CheckResult:
        data = self.api.call("auth.test")
        detail = f"token valid for {data.get('user')} in {data.get('team')}"
        if self.slack_config.default_channel:
            info = self.api.call("conversations.info", channel=self.slack_config.default_channel)
            channel = info.get("channel") or {}
            if not channel.get("is_member", True):
                return CheckResult(
                    False,
                    f"bot is not a member of {self.slack_config.default_channel}: "
                    "invite it with /invite @IMAS",
                )
        return CheckResult(True, detail)
