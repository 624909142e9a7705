"""The one typed settings object.

Read from the environment (and a ``.env`` file in the working directory). This is the only
module that looks at the environment; everything else receives a ``Settings`` instance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.domain.errors import ConfigError
from providers.guard import AddressPolicy, TargetRefused


def _env(*names: str) -> Any:
    return Field(validation_alias=AliasChoices(*names))


class Settings(BaseSettings):
    """All runtime settings. Secrets are ``SecretStr`` so they never print."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_api_url: str = Field("https://slack.com/api/", validation_alias="SLACK_API_URL")
    slack_pin_emoji: str = Field("pushpin", validation_alias="IMAS_PIN_EMOJI")

    database_url: str = Field("sqlite:///./imas.db", validation_alias="IMAS_DATABASE_URL")
    # Empty: derived from IMAS_HOST/IMAS_PORT (see ``_default_base_url``).
    base_url: str = Field("", validation_alias="IMAS_BASE_URL")
    base_url_is_derived: bool = Field(False, exclude=True)  # IMAS_BASE_URL was not set
    host: str = Field("127.0.0.1", validation_alias="IMAS_HOST")
    port: int = Field(3000, ge=0, le=65535, validation_alias="IMAS_PORT")
    secret_key: SecretStr | None = Field(None, validation_alias="IMAS_SECRET_KEY")
    config_file: Path | None = Field(None, validation_alias="IMAS_CONFIG")
    log_level: str = Field("INFO", validation_alias="IMAS_LOG_LEVEL")
    log_format: str = Field("text", validation_alias="IMAS_LOG_FORMAT")

    web_processes: int = Field(1, ge=1, le=32, validation_alias="IMAS_WEB_PROCESSES")
    reuse_port: bool = Field(False, validation_alias="IMAS_REUSE_PORT")
    outbox_workers: int = Field(32, ge=1, le=128, validation_alias="IMAS_OUTBOX_WORKERS")
    outbox_poll_seconds: float = Field(1.0, gt=0, validation_alias="IMAS_OUTBOX_POLL_SECONDS")
    outbox_lease_seconds: float = Field(120.0, gt=0, validation_alias="IMAS_OUTBOX_LEASE_SECONDS")
    outbox_max_attempts: int = Field(300, ge=1, validation_alias="IMAS_OUTBOX_MAX_ATTEMPTS")
    outbox_retry_hours: float = Field(24.0, gt=0, validation_alias="IMAS_OUTBOX_RETRY_HOURS")
    outbox_backoff_cap_seconds: float = Field(
        300.0, gt=0, validation_alias="IMAS_OUTBOX_BACKOFF_CAP_SECONDS"
    )
    http_connect_timeout: float = Field(3.0, gt=0, validation_alias="IMAS_HTTP_CONNECT_TIMEOUT")
    http_read_timeout: float = Field(10.0, gt=0, validation_alias="IMAS_HTTP_READ_TIMEOUT")
    allow_private_webhook_targets: bool = Field(
        False, validation_alias="IMAS_ALLOW_PRIVATE_WEBHOOK_TARGETS"
    )
    scheduler_enabled: bool = Field(True, validation_alias="IMAS_SCHEDULER_ENABLED")
    webhook_token: SecretStr | None = Field(None, validation_alias="IMAS_WEBHOOK_TOKEN")
    sentry_client_secret: SecretStr | None = Field(
        None, validation_alias="IMAS_SENTRY_CLIENT_SECRET"
    )
    max_body_bytes: int = Field(1_048_576, gt=0, validation_alias="IMAS_MAX_BODY_BYTES")
    # Addresses/networks (comma-separated) whose X-Forwarded-For / -Proto IMAS believes;
    # empty (the default): nobody's, the peer address is the client.
    trusted_proxies: str = Field("", validation_alias="IMAS_TRUSTED_PROXIES")

    google_service_account_file: Path | None = Field(
        None, validation_alias="GOOGLE_SERVICE_ACCOUNT_FILE"
    )
    google_service_account_json: SecretStr | None = Field(
        None, validation_alias="GOOGLE_SERVICE_ACCOUNT_JSON"
    )
    google_lid_template_id: str | None = Field(None, validation_alias="GOOGLE_LID_TEMPLATE_ID")
    google_drive_folder_id: str | None = Field(None, validation_alias="GOOGLE_DRIVE_FOLDER_ID")
    google_drive_domain: str | None = Field(None, validation_alias="GOOGLE_DRIVE_DOMAIN")
    google_api_endpoint: str | None = Field(None, validation_alias="GOOGLE_API_ENDPOINT")
    google_token_uri: str | None = Field(None, validation_alias="GOOGLE_TOKEN_URI")

    # Dashboard single sign-on (OpenID Connect, authorization code + PKCE): see README
    # "Web dashboard". The role comes from the ID token's ``oidc_role_claim`` through
    # ``oidc_role_map`` ("claim value=role,..."), else ``oidc_default_role``, else refused.
    oidc_issuer: str | None = Field(None, validation_alias="IMAS_OIDC_ISSUER")
    oidc_client_id: str | None = Field(None, validation_alias="IMAS_OIDC_CLIENT_ID")
    oidc_client_secret: SecretStr | None = Field(None, validation_alias="IMAS_OIDC_CLIENT_SECRET")
    oidc_scopes: str = Field("openid email profile", validation_alias="IMAS_OIDC_SCOPES")
    oidc_role_claim: str = Field("groups", validation_alias="IMAS_OIDC_ROLE_CLAIM")
    oidc_role_map: str = Field("", validation_alias="IMAS_OIDC_ROLE_MAP")
    oidc_default_role: str | None = Field(None, validation_alias="IMAS_OIDC_DEFAULT_ROLE")
    oidc_label: str = Field("single sign-on", validation_alias="IMAS_OIDC_LABEL")
    # Dashboard sign-in by a trusted authenticating proxy (oauth2-proxy style): the user
    # and groups headers are believed only from IMAS_TRUSTED_PROXIES (above); groups map
    # to roles through IMAS_OIDC_ROLE_MAP / IMAS_OIDC_DEFAULT_ROLE.
    proxy_user_header: str = Field("X-Forwarded-Email", validation_alias="IMAS_PROXY_USER_HEADER")
    proxy_groups_header: str = Field(
        "X-Forwarded-Groups", validation_alias="IMAS_PROXY_GROUPS_HEADER"
    )

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        # slack_sdk joins with urljoin: without the slash the path part is dropped.
        return value if value.endswith("/") else value + "/"

    @field_validator("base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        import ipaddress

        entries = [item.strip() for item in value.split(",") if item.strip()]
        for item in entries:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return ",".join(entries)

    @model_validator(mode="after")
    def _default_base_url(self) -> Settings:
        """Without IMAS_BASE_URL, links point at the address actually served: IMAS_HOST
        (127.0.0.1 for a wildcard address) and IMAS_PORT. ``Server`` rewrites it once the
        port is known when IMAS_PORT is 0."""
        self.base_url_is_derived = not self.base_url  # never read from outside
        if self.base_url_is_derived:
            self.base_url = self.served_url(self.port)
        return self

    def served_url(self, port: int) -> str:
        host = self.host
        if host in ("", "0.0.0.0", "::"):  # noqa: S104 - a URL for links, not a bind
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    @property
    def base_url_is_loopback(self) -> bool:
        from urllib.parse import urlsplit

        host = (urlsplit(self.base_url).hostname or "").lower()
        return host in ("localhost", "::1") or host.startswith("127.")

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value not in ("text", "json"):
            raise ValueError("must be 'text' or 'json'")
        return value

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None and self.slack_signing_secret is not None

    @property
    def google_enabled(self) -> bool:
        return bool(self.google_service_account_file or self.google_service_account_json)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def google_service_account_info(self) -> dict[str, Any] | None:
        """The service-account key as a dict, or None when Google is not configured."""
        if self.google_service_account_json is not None:
            return dict(json.loads(self.google_service_account_json.get_secret_value()))
        if self.google_service_account_file is not None:
            return dict(json.loads(self.google_service_account_file.read_text()))
        return None

    def check_slack_pair(self) -> None:
        """``imas serve`` refuses half a Slack configuration (the CLI does not need both:
        ``SLACK_BOT_TOKEN`` alone may feed a ``${SLACK_BOT_TOKEN}`` reference)."""
        if (self.slack_bot_token is None) != (self.slack_signing_secret is None):
            missing = (
                "SLACK_SIGNING_SECRET" if self.slack_signing_secret is None else "SLACK_BOT_TOKEN"
            )
            present = (
                "SLACK_BOT_TOKEN" if missing == "SLACK_SIGNING_SECRET" else "SLACK_SIGNING_SECRET"
            )
            raise ConfigError(
                f"invalid settings:\n  - {present} is set but {missing} is not: "
                "set both to enable Slack, or neither"
            )

    def refused_endpoints(self) -> list[str]:
        """SLACK_API_URL / GOOGLE_API_ENDPOINT / GOOGLE_TOKEN_URI the address guard refuses
        without DNS (syntax, IP literals, localhost; names are checked at each call)."""
        policy = AddressPolicy(allow_private=self.allow_private_webhook_targets)
        problems = []
        for env_name, url in (
            ("SLACK_API_URL", self.slack_api_url),
            ("GOOGLE_API_ENDPOINT", self.google_api_endpoint),
            ("GOOGLE_TOKEN_URI", self.google_token_uri),
        ):
            if url is None:
                continue
            try:
                policy.check_url(url)
            except TargetRefused as exc:
                problems.append(f"{env_name}: {exc.describe()}")
        return problems

    def check_consistency(self) -> None:
        """Refuse half-configured features. Raises ConfigError naming the settings."""
        problems: list[str] = []
        if self.google_service_account_file and self.google_service_account_json:
            problems.append(
                "set only one of GOOGLE_SERVICE_ACCOUNT_FILE and GOOGLE_SERVICE_ACCOUNT_JSON"
            )
        if self.google_service_account_file and not self.google_service_account_file.is_file():
            problems.append(
                f"GOOGLE_SERVICE_ACCOUNT_FILE: no such file {self.google_service_account_file}"
            )
        if self.google_service_account_json is not None:
            try:
                json.loads(self.google_service_account_json.get_secret_value())
            except ValueError:
                problems.append("GOOGLE_SERVICE_ACCOUNT_JSON is not valid JSON")
        problems += self.refused_endpoints()
        if not self.is_sqlite and self.secret_key is None:
            problems.append(
                "IMAS_SECRET_KEY is required with a server database (every replica needs the same key)"
            )
        if problems:
            raise ConfigError("invalid settings:\n  - " + "\n  - ".join(problems))

    # -- exactly once under crashes and slow targets (issue 11) --------------------------
    worker_heartbeat_seconds: float = Field(
        2.0, gt=0, validation_alias="IMAS_WORKER_HEARTBEAT_SECONDS"
    )
    worker_dead_seconds: float = Field(10.0, gt=0, validation_alias="IMAS_WORKER_DEAD_SECONDS")
    outbox_provider_workers: int | None = Field(
        None, ge=1, le=128, validation_alias="IMAS_OUTBOX_PROVIDER_WORKERS"
    )

    @property
    def provider_budget(self) -> int:
        """Outbox workers one provider may hold at once (the bulkhead)."""
        if self.outbox_provider_workers is not None:
            return min(self.outbox_provider_workers, self.outbox_workers)
        return min(self.outbox_workers, max(2, self.outbox_workers // 4))

    # The living document in the team's own template (issue 15): the headings under which
    # IMAS writes, comma-separated, matched case-insensitively (see README "LID template").
    google_lid_timeline_headings: str = Field(
        "TIMELINE", validation_alias="GOOGLE_LID_TIMELINE_HEADINGS"
    )
    google_lid_resolution_headings: str = Field(
        "RESOLUTION", validation_alias="GOOGLE_LID_RESOLUTION_HEADINGS"
    )
    google_lid_postmortem_headings: str = Field(
        "POST-MORTEM,POSTMORTEM,POST MORTEM", validation_alias="GOOGLE_LID_POSTMORTEM_HEADINGS"
    )


_ENV_NAMES = {
    name: (field.validation_alias if isinstance(field.validation_alias, str) else name)
    for name, field in Settings.model_fields.items()
}


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment plus ``overrides`` (by field name).

    Raises ConfigError with one line per invalid setting, named as in the environment.
    """
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            lines.append(f"{_ENV_NAMES.get(field, field)}: {err['msg']}")
        raise ConfigError("invalid settings:\n  - " + "\n  - ".join(lines)) from None
    settings.check_consistency()
    return settings


def environment() -> dict[str, str]:
    """What ``${VAR}`` references in configuration files resolve from: the process
    environment, then the ``.env`` file Settings reads (the environment wins, as for
    settings), so a value set in ``.env`` works everywhere (``serve``, ``doctor``,
    ``config validate``, ``IMAS_CONFIG``)."""
    import os

    from dotenv import dotenv_values

    env_file = Path(str(Settings.model_config.get("env_file") or ".env"))
    from_file = dotenv_values(env_file, encoding="utf-8") if env_file.is_file() else {}
    merged = {name: value for name, value in from_file.items() if value is not None}
    merged.update(os.environ)
    return merged
