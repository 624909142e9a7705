"""Secret hygiene of every non-Slack provider (configs, validation errors, raised errors)
and their registration."""

from __future__ import annotations

import pydantic
import pytest

from bot.domain.errors import ProviderError
from providers.base import Recipient
from providers.discord import DiscordConfig, DiscordProvider
from providers.email import EmailConfig, EmailProvider
from providers.http import HttpClient
from providers.ntfy import NtfyConfig, NtfyProvider
from providers.sms_ovh import OvhSmsConfig, OvhSmsProvider
from providers.teams import TeamsConfig, TeamsProvider
from providers.webhook import WebhookConfig, WebhookProvider
from tests.unit.providers.conftest import make_notification

S = {
    "discord": "DISCORDtokenSECRET",
    "teams": "TEAMSsigSECRET",
    "smtp": "SMTPpasswordSECRET",
    "pd": "PDroutingSECRET",
    "genie": "GENIEapiSECRET",
    "header": "HEADERvalueSECRET",
    "slackhook": "SLACKhookSECRET",
    "ntfy": "NTFYtokenSECRET",
    "ovh_secret": "OVHappSECRET",
    "ovh_ck": "OVHconsumerSECRET",
}


def configs(base_url: str) -> list[tuple[type, type, dict]]:
    return [
        (
            DiscordProvider,
            DiscordConfig,
            {"webhook_url": f"{base_url}/api/webhooks/1/{S['discord']}"},
        ),
        (TeamsProvider, TeamsConfig, {"webhook_url": f"{base_url}/invoke?sig={S['teams']}"}),
        (
            WebhookProvider,
            WebhookConfig,
            {
                "format": "pagerduty",
                "url": f"{base_url}/v2/enqueue",
                "routing_key": S["pd"],
                "headers": {"X-Auth": S["header"]},
            },
        ),
        (
            WebhookProvider,
            WebhookConfig,
            {"format": "opsgenie", "endpoint": base_url, "api_key": S["genie"]},
        ),
        (
            WebhookProvider,
            WebhookConfig,
            {"format": "slack", "url": f"{base_url}/services/T1/B1/{S['slackhook']}"},
        ),
        (NtfyProvider, NtfyConfig, {"server": base_url, "topic": "t", "token": S["ntfy"]}),
        (
            OvhSmsProvider,
            OvhSmsConfig,
            {
                "application_key": "ak",
                "application_secret": S["ovh_secret"],
                "consumer_key": S["ovh_ck"],
                "service_name": "sms-x-1",
                "recipients": ["+33612345678"],
                "endpoint": base_url,
            },
        ),
    ]


def assert_clean(text: str) -> None:
    for secret in S.values():
        assert secret not in text, f"secret {secret} leaked in: {text[:300]}"


def test_config_repr_and_str_hide_secrets():
    for _provider_cls, config_cls, values in configs("https://target.example"):
        config = config_cls(**values)
        assert_clean(repr(config))
        assert_clean(str(config))
    email = EmailConfig(host="h", username="u", password=S["smtp"], from_email="a@example.com")
    assert_clean(repr(email) + str(email))


def test_secret_keys_are_secret_fields():
    for provider_cls, config_cls, _ in configs("https://x.example"):
        assert provider_cls.config_model is config_cls
        for key in provider_cls.secret_keys:
            assert key in config_cls.model_fields, (provider_cls, key)
    assert EmailProvider.secret_keys == {"password"}
    for cls in (DiscordConfig, TeamsConfig, EmailConfig, WebhookConfig, NtfyConfig, OvhSmsConfig):
        for name, field in cls.model_fields.items():
            if name in {
                "webhook_url",
                "password",
                "routing_key",
                "api_key",
                "token",
                "application_secret",
                "consumer_key",
                "url",
            }:
                assert "SecretStr" in str(field.annotation), (cls, name)


def test_validation_errors_hide_inputs():
    bad = [
        (DiscordConfig, {"webhook_url": f"ftp://x/{S['discord']}"}),
        (WebhookConfig, {"format": "json", "url": f"ftp://x/{S['slackhook']}"}),
        (
            WebhookConfig,
            {"format": "json", "url": "https://x.example", "headers": {"X-A": S["header"] + "\n"}},
        ),
        (WebhookConfig, {"format": "json", "url": "https://x.example", "routing_key": S["pd"]}),
        (NtfyConfig, {"topic": "bad topic", "token": S["ntfy"]}),
        (
            OvhSmsConfig,
            {
                "application_key": "a",
                "application_secret": S["ovh_secret"],
                "consumer_key": S["ovh_ck"],
                "service_name": "x",
                "recipients": [],
            },
        ),
        (EmailConfig, {"host": "h", "from_email": "bad", "password": S["smtp"]}),
    ]
    for cls, values in bad:
        with pytest.raises(pydantic.ValidationError) as err:
            cls(**values)
        assert_clean(str(err.value))
        # what the registry reports (``msg`` per error) is clean too
        assert_clean(" ".join(e["msg"] for e in err.value.errors()))


def test_provider_errors_hide_secrets(recorder, http):
    # every target answers 401 with a body that does not echo anything
    for path in (
        "/api/webhooks/1/" + S["discord"],
        "/invoke",
        "/v2/enqueue",
        "/v2/alerts",
        "/services/T1/B1/" + S["slackhook"],
        "/",
        "/sms/sms-x-1/jobs",
    ):
        recorder.default(path, (401, {}, {"message": "unauthorized"}))
    for provider_cls, config_cls, values in configs(recorder.base_url):
        provider = provider_cls(name="p", config=config_cls(**values), http=http)
        with pytest.raises(ProviderError) as err:
            provider.send(make_notification(), Recipient("default"), idempotency_key="k")
        assert_clean(str(err.value) + repr(err.value) + err.value.describe())
        check = provider.check()
        assert_clean(check.detail)
        # the private-address guard's error is clean too
        guarded = provider_cls(name="p", config=config_cls(**values), http=HttpClient())
        with pytest.raises(ProviderError) as guard:
            guarded.send(make_notification(), Recipient("default"), idempotency_key="k")
        assert_clean(guard.value.describe())


def test_registry_knows_every_type():
    from bot.domain.errors import InputError
    from providers.registry import PROVIDER_TYPES, build_provider, validate_provider_config

    assert {"DISCORD", "TEAMS", "EMAIL", "WEBHOOK", "NTFY", "SMS"} <= set(PROVIDER_TYPES)
    provider = build_provider(
        type_name="webhook",
        name="PagerDuty",
        config={"format": "pagerduty", "routing_key": S["pd"]},
        http=HttpClient(),
    )
    assert isinstance(provider, WebhookProvider)
    with pytest.raises(InputError) as err:
        validate_provider_config("DISCORD", "Discord", {"webhook_url": f"ftp://x/{S['discord']}"})
    assert "webhook_url" in str(err.value)
    assert_clean(str(err.value))
