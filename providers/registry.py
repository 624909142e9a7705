"""Registry of notification provider types, keyed by the config file's ``type``."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from bot.domain.errors import InputError
from providers.base import NotificationProvider
from providers.discord import DiscordProvider
from providers.email import EmailProvider
from providers.http import HttpClient
from providers.ntfy import NtfyProvider
from providers.slack import SlackProvider
from providers.sms_ovh import OvhSmsProvider
from providers.teams import TeamsProvider
from providers.webhook import WebhookProvider

PROVIDER_TYPES: dict[str, type[NotificationProvider]] = {
    cls.type: cls
    for cls in (
        SlackProvider,
        DiscordProvider,
        TeamsProvider,
        EmailProvider,
        WebhookProvider,
        NtfyProvider,
        OvhSmsProvider,
    )
}


def provider_class(type_name: str) -> type[NotificationProvider]:
    """The class for ``type_name``; InputError listing the known types otherwise."""
    try:
        return PROVIDER_TYPES[type_name.upper()]
    except KeyError:
        known = ", ".join(sorted(PROVIDER_TYPES))
        raise InputError(f"unknown provider type {type_name!r} (known: {known})") from None


def validate_provider_config(type_name: str, name: str, config: dict[str, Any]) -> Any:
    """Validate ``config`` for provider ``name``; InputError names the provider and key."""
    cls = provider_class(type_name)
    try:
        return cls.config_model.model_validate(config)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "config"
            problems.append(f"provider {name!r}: config key {key!r}: {err['msg']}")
        raise InputError("; ".join(problems), field="config") from None


def build_provider(
    *, type_name: str, name: str, config: dict[str, Any], http: HttpClient
) -> NotificationProvider:
    """Instantiate a provider from its stored (decrypted) config."""
    cls = provider_class(type_name)
    model = validate_provider_config(type_name, name, config)
    return cls(name=name, config=model, http=http)
