"""SMS: text messages through the OVHcloud SMS API (signed OVH API calls).

Config keys:

* ``application_key``, ``application_secret`` (secret), ``consumer_key`` (secret): the
  OVH API credentials (the consumer key needs ``POST /sms/*/jobs``, and ``GET /sms/*`` for
  ``check()``);
* ``service_name``: the SMS account, e.g. ``sms-ab12345-1``;
* ``sender`` (optional): a sender registered on the account; when absent the job is sent
  with ``senderForResponse: true`` (an OVH short number);
* ``recipients``: E.164 numbers (``+33612345678``), at least one;
* ``endpoint`` (default ``https://eu.api.ovh.com/1.0``): the API base; the python-ovh
  aliases ``ovh-eu``, ``ovh-ca`` and ``ovh-us`` are accepted.

Each send is ``POST {endpoint}/sms/{service_name}/jobs`` with ``{"message", "sender",
"receivers", "noStopClause": true, "priority": "high", "charset": "UTF-8", "coding"}`` and
the headers ``X-Ovh-Application``, ``X-Ovh-Consumer``, ``X-Ovh-Timestamp`` and
``X-Ovh-Signature`` = ``"$1$" + sha1_hex(secret + "+" + consumer_key + "+" + METHOD + "+"
+ full_url + "+" + body + "+" + timestamp)``; the exact body bytes signed are the bytes sent.

* The message is :func:`providers.messages.sms_text` (<= 160 characters): plain text on one
  line, control characters and line breaks removed (:func:`providers.text.one_line`).
* ``coding`` is ``7bit`` when the text fits the GSM 03.38 alphabet (160 characters per SMS)
  and ``8bit`` otherwise: 8bit is UCS-2, only 70 characters per SMS, so it is reserved for
  texts that need it.
* The timestamp comes from the local clock (``clock``, injectable for tests). OVH
  recommends reading ``GET /auth/time`` to correct clock drift; we rely on NTP-synchronised
  hosts instead, and OVH rejects requests whose timestamp is off by minutes with an HTTP
  400/401 (surfaced as a permanent error).

Idempotency: the SMS API takes no idempotency key: at-least-once. Errors: HttpClient
classification (429/5xx/timeouts Retryable; 400/401/403 invalid credentials or signature,
404 unknown service, Permanent). A job where OVH accepts none of the receivers is
Permanent. ``check()`` performs a signed ``GET {endpoint}/sms/{service_name}`` (read-only).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

from pydantic import ConfigDict, Field, SecretStr, field_validator

from bot.domain.errors import PermanentProviderError, ProviderError
from providers.base import (
    CheckResult,
    DeliveryResult,
    Notification,
    NotificationProvider,
    ProviderConfig,
    Recipient,
)
from providers.http import HttpClient
from providers.messages import SMS_LIMIT, sms_text, validate_http_url

OVH_ENDPOINTS = {
    "ovh-eu": "https://eu.api.ovh.com/1.0",
    "ovh-ca": "https://ca.api.ovh.com/1.0",
    "ovh-us": "https://api.us.ovhcloud.com/1.0",
}
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_SERVICE = re.compile(r"^[A-Za-z0-9._-]+$")

# GSM 03.38 default alphabet, and the extension table (each costs two septets).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


def gsm7_length(text: str) -> int | None:
    """Septets needed for ``text`` in GSM-7, or None when it needs UCS-2."""
    length = 0
    for char in text:
        if char in GSM7_BASIC:
            length += 1
        elif char in GSM7_EXTENDED:
            length += 2
        else:
            return None
    return length


def sms_body_text(notification: Notification) -> tuple[str, str]:
    """(text, coding): the <= 160-character text and ``7bit`` or ``8bit``."""
    limit = SMS_LIMIT
    while True:
        text = sms_text(notification, limit)
        septets = gsm7_length(text)
        if septets is None:
            return text, "8bit"
        if septets <= SMS_LIMIT or limit <= 40:
            return text, "7bit"
        limit -= septets - SMS_LIMIT


def ovh_signature(
    *,
    application_secret: str,
    consumer_key: str,
    method: str,
    url: str,
    body: str,
    timestamp: int,
) -> str:
    """``$1$`` + SHA-1 hex of the OVH signing string."""
    raw = "+".join([application_secret, consumer_key, method.upper(), url, body, str(timestamp)])
    return "$1$" + hashlib.sha1(raw.encode("utf-8")).hexdigest()  # noqa: S324 - OVH protocol


class OvhSmsConfig(ProviderConfig):
    """SMS (OVH) config; see the module docstring."""

    model_config = ConfigDict(hide_input_in_errors=True)  # inputs may be secrets

    application_key: str = Field(min_length=1)
    application_secret: SecretStr
    consumer_key: SecretStr
    service_name: str
    sender: str | None = None
    recipients: list[str] = Field(min_length=1)
    endpoint: str = "https://eu.api.ovh.com/1.0"

    @field_validator("service_name")
    @classmethod
    def _service(cls, value: str) -> str:
        if not _SERVICE.match(value):
            raise ValueError("service_name must look like sms-ab12345-1")
        return value

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        cleaned = [v.replace(" ", "") for v in value]
        bad = [v for v in cleaned if not _E164.match(v)]
        if bad:
            raise ValueError(f"not E.164 numbers (+<country><number>): {', '.join(bad)}")
        return cleaned

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        value = OVH_ENDPOINTS.get(value.strip().lower(), value)
        return validate_http_url(value).rstrip("/")


class OvhSmsProvider(NotificationProvider):
    """Sends one SMS job to every configured recipient (recipient kind ``default``)."""

    type = "SMS"
    config_model = OvhSmsConfig
    recipient_kinds = frozenset({"default"})
    supports_dedup = False
    secret_keys = frozenset({"application_secret", "consumer_key"})

    def __init__(
        self,
        *,
        name: str,
        config: ProviderConfig,
        http: HttpClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name=name, config=config, http=http)
        self.clock = clock

    @classmethod
    def target_urls(cls, config: ProviderConfig) -> dict[str, str]:
        return {"endpoint": cast(OvhSmsConfig, config).endpoint}

    @property
    def settings(self) -> OvhSmsConfig:
        return cast(OvhSmsConfig, self.config)

    def signed_request(self, method: str, path: str, payload: Any = None) -> Any:
        """One signed OVH API call; returns the decoded JSON reply (or None)."""
        cfg = self.settings
        url = f"{cfg.endpoint}{path}"
        body = "" if payload is None else json.dumps(payload, separators=(",", ":"))
        timestamp = int(self.clock())
        headers = {
            "X-Ovh-Application": cfg.application_key,
            "X-Ovh-Consumer": cfg.consumer_key.get_secret_value(),
            "X-Ovh-Timestamp": str(timestamp),
            "X-Ovh-Signature": ovh_signature(
                application_secret=cfg.application_secret.get_secret_value(),
                consumer_key=cfg.consumer_key.get_secret_value(),
                method=method,
                url=url,
                body=body,
                timestamp=timestamp,
            ),
        }
        if payload is not None:
            headers["Content-Type"] = "application/json"
        response = self.http.request(
            method, url, data=body.encode("utf-8") if body else None, headers=headers
        )
        try:
            return response.json()
        except ValueError:
            return None

    def send(
        self,
        notification: Notification,
        recipient: Recipient,
        *,
        idempotency_key: str,  # noqa: ARG002 - contract argument
        prior: Mapping[str, Any] | None = None,  # noqa: ARG002 - contract argument
    ) -> DeliveryResult:
        """Create one SMS job. At-least-once; raises Retryable/PermanentProviderError."""
        self.require_recipient_kind(recipient)
        cfg = self.settings
        text, coding = sms_body_text(notification)
        payload: dict[str, Any] = {
            "message": text,
            "receivers": list(cfg.recipients),
            "noStopClause": True,
            "priority": "high",
            "charset": "UTF-8",
            "coding": coding,
        }
        if cfg.sender:
            payload["sender"] = cfg.sender
        else:
            payload["senderForResponse"] = True
        reply = self.signed_request("POST", f"/sms/{cfg.service_name}/jobs", payload)
        reply = reply if isinstance(reply, dict) else {}
        valid = [str(r) for r in reply.get("validReceivers") or []]
        invalid = [str(r) for r in reply.get("invalidReceivers") or []]
        if invalid and not valid:
            raise PermanentProviderError(
                f"OVH refused every SMS receiver: {', '.join(invalid)}",
                code="invalid_receivers",
                hint="check the provider's recipients (E.164 numbers)",
            )
        ids = [str(i) for i in reply.get("ids") or []]
        detail = f"SMS job created for {len(valid) or len(cfg.recipients)} receiver(s)"
        if invalid:
            detail += f"; invalid receivers: {', '.join(invalid)}"
        return DeliveryResult(
            detail=detail,
            data={"job_ids": ids, "credits": reply.get("totalCreditsRemoved")},
        )

    def check(self) -> CheckResult:
        """Signed ``GET /sms/{service_name}``: credentials, signature, clock and service."""
        cfg = self.settings
        try:
            info = self.signed_request("GET", f"/sms/{cfg.service_name}")
        except ProviderError as exc:
            return CheckResult(False, f"OVH SMS check failed: {exc.describe()}")
        credits = info.get("creditsLeft") if isinstance(info, dict) else None
        return CheckResult(
            True,
            f"OVH SMS service {cfg.service_name} reachable"
            + (f" ({credits} credits left)" if credits is not None else ""),
        )
