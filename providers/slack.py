"""SLACK notification provider: the incident announcement in channels, DMs to people.

Per (incident, channel) there is one top-level announcement, posted for the first event
and edited in place for later ones, each later event also adding a threaded reply. The
first post carries Slack message metadata (``imas_delivery`` with the idempotency key) so
a retry after an ambiguous failure (timeout, lost response, a crash before the outcome
was recorded) finds its own message in the channel history instead of posting twice.

Reconciliation (issue 11) does not depend on the channel's traffic: the outbox records
when a delivery was first claimed (``outbox.first_claimed_at``, committed before any call,
handed to the provider as ``delivery_since``), and :func:`find_own_message` reads the
history from that moment (less a margin for clock skew) to the end, page by page. DMs
carry the same metadata and are reconciled in the DM channel (``conversations.open``).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime, timedelta
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
    delivery_since,
)
from providers.http import HttpClient
from providers.slack_api import SlackApi
from providers.slack_blocks import announcement_blocks, dm_blocks, event_line, fallback_text

METADATA_EVENT = "imas_delivery"
# How far before the first attempt the history is read: Slack's clock and ours may differ.
CLOCK_SKEW = timedelta(minutes=10)
# Without a start time (rows claimed before fencing existed), how many pages to read.
UNBOUNDED_PAGES = 20
HISTORY_PAGE = 200


def metadata_for(key: str, short_id: str) -> dict[str, Any]:
    """The message metadata by which a retry recognises its own earlier post."""
    return {"event_type": METADATA_EVENT, "event_payload": {"key": key, "incident": short_id}}


def find_own_message(
    api: SlackApi, channel: str, key: str, *, since: datetime | None
) -> str | None:
    """The ts of IMAS's message carrying ``key`` in ``channel``, posted since ``since``.

    Reads ``conversations.history`` from ``since`` (less ``CLOCK_SKEW``) to the newest
    message, following every cursor: however many messages were posted in between, the
    earlier post is found."""
    args: dict[str, Any] = {"channel": channel, "limit": HISTORY_PAGE, "include_all_metadata": True}
    if since is not None:
        args["oldest"] = f"{(since - CLOCK_SKEW).timestamp():.6f}"
    cursor = ""
    pages = 0
    while True:
        data = api.call("conversations.history", **args, **({"cursor": cursor} if cursor else {}))
        for message in data.get("messages", []):
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == METADATA_EVENT and payload.get("key") == key:
                return str(message.get("ts"))
        cursor = str((data.get("response_metadata") or {}).get("next_cursor") or "")
        pages += 1
        if not cursor or (since is None and pages >= UNBOUNDED_PAGES):
            return None


def dm_channel(api: SlackApi, user_id: str) -> str:
    """The id of the DM channel between IMAS and ``user_id`` (opened if needed)."""
    data = api.call("conversations.open", users=user_id)
    return str((data.get("channel") or {}).get("id") or "")


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
            return self._send_dm(notification, recipient.address, idempotency_key)
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
            existing = find_own_message(self.api, channel, key, since=delivery_since.get())
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
            metadata=metadata_for(key, view.short_id),
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

    def _send_dm(self, notification: Notification, user_id: str, key: str) -> DeliveryResult:
        if "@" in user_id:
            found = self.api.call("users.lookupByEmail", email=user_id)
            user_id = str((found.get("user") or {}).get("id") or "")
            if not user_id:
                raise PermanentProviderError(
                    "no Slack user for that e-mail address", code="users_not_found"
                )
        view = notification.incident
        if delivery_attempt.get() > 1:
            channel = dm_channel(self.api, user_id)
            existing = find_own_message(self.api, channel, key, since=delivery_since.get())
            if existing:
                return DeliveryResult(
                    f"Slack DM to {user_id} already sent (ts {existing})",
                    {"ts": existing, "channel": channel},
                )
        line = event_line(notification.event, view, notification.text, notification.actor)
        data = self.api.call(
            "chat.postMessage",
            channel=user_id,
            text=line,
            blocks=dm_blocks(line, view),
            unfurl_links=False,
            metadata=metadata_for(key, view.short_id),
        )
        return DeliveryResult(
            f"sent Slack DM to {user_id}",
            {"ts": str(data.get("ts", "")), "channel": str(data.get("channel", ""))},
        )

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
