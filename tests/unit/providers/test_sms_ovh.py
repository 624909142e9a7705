from __future__ import annotations

import hashlib

import pytest

from bot.domain.errors import PermanentProviderError, RetryableProviderError
from providers.base import Recipient
from providers.http import HttpClient
from providers.sms_ovh import OvhSmsConfig, OvhSmsProvider, gsm7_length, sms_body_text
from tests.fakes.receivers import Reply
from tests.unit.providers.conftest import make_notification

APP_KEY = "appKEY123"
APP_SECRET = "ovh-APP-SECRET-value"
CONSUMER = "ovh-CONSUMER-KEY-value"
SERVICE = "sms-ab12345-1"
JOBS = f"/1.0/sms/{SERVICE}/jobs"
NOW = 1_715_938_200
OK_REPLY = Reply(
    200,
    body={
        "totalCreditsRemoved": 2,
        "invalidReceivers": [],
        "ids": [123456789, 123456790],
        "validReceivers": ["+33612345678", "+33698765432"],
        "tag": "",
    },
)


def provider(recorder, http, **overrides) -> OvhSmsProvider:
    values = {
        "application_key": APP_KEY,
        "application_secret": APP_SECRET,
        "consumer_key": CONSUMER,
        "service_name": SERVICE,
        "sender": "IMAS",
        "recipients": ["+33612345678", "+33 6 98 76 54 32"],
        "endpoint": recorder.url("/1.0"),
    }
    values.update(overrides)
    return OvhSmsProvider(
        name="SMS", config=OvhSmsConfig(**values), http=http, clock=lambda: NOW + 0.7
    )


def expected_signature(method: str, url: str, body: bytes, timestamp: str) -> str:
    """What OVH's API computes on its side, from the received request."""
    raw = "+".join([APP_SECRET, CONSUMER, method, url, body.decode(), timestamp])
    return "$1$" + hashlib.sha1(raw.encode()).hexdigest()


def test_signed_job(recorder, http):
    recorder.default(JOBS, OK_REPLY)
    p = provider(recorder, http)
    result = p.send(make_notification(), Recipient("default"), idempotency_key="k")
    assert result.data["job_ids"] == ["123456789", "123456790"]
    (req,) = recorder.requests_for(JOBS)
    assert req.method == "POST"
    assert req.header("X-Ovh-Application") == APP_KEY
    assert req.header("X-Ovh-Consumer") == CONSUMER
    assert req.header("X-Ovh-Timestamp") == str(NOW)
    full_url = recorder.url(JOBS)
    assert req.header("X-Ovh-Signature") == expected_signature("POST", full_url, req.body, str(NOW))
    body = req.json
    assert body["receivers"] == ["+33612345678", "+33698765432"]
    assert body["sender"] == "IMAS"
    assert body["noStopClause"] is True
    assert body["priority"] == "high"
    assert body["charset"] == "UTF-8"
    assert body["coding"] == "7bit"
    assert len(body["message"]) <= 160
    assert body["message"].startswith("[SEV1] INC-A1B2C3 created: Redis primary unreachable")


def test_tampered_body_fails_signature(recorder, http):
    recorder.default(JOBS, OK_REPLY)
    provider(recorder, http).send(make_notification(), Recipient("default"), idempotency_key="k")
    req = recorder.requests_for(JOBS)[0]
    tampered = req.body.replace(b"+33612345678", b"+33600000000")
    assert req.header("X-Ovh-Signature") != expected_signature(
        "POST", recorder.url(JOBS), tampered, str(NOW)
    )


def test_unicode_text_uses_8bit_and_stays_160(recorder, http):
    recorder.default(JOBS, OK_REPLY)
    n = make_notification(title="Base de données ê 🚨 " + "z" * 300)
    provider(recorder, http).send(n, Recipient("default"), idempotency_key="k")
    body = recorder.requests_for(JOBS)[0].json
    assert body["coding"] == "8bit"
    assert len(body["message"]) <= 160
    assert "🚨" in body["message"]


def test_gsm7_extension_chars_count_double():
    text, coding = sms_body_text(make_notification(title="{[~]}" * 60))
    assert coding == "7bit"
    assert gsm7_length(text) is not None and gsm7_length(text) <= 160


def test_without_sender_uses_sender_for_response(recorder, http):
    provider(recorder, http, sender=None).send(
        make_notification(), Recipient("default"), idempotency_key="k"
    )
    body = recorder.requests_for(JOBS)[0].json
    assert "sender" not in body and body["senderForResponse"] is True


def test_all_receivers_invalid_is_permanent(recorder, http):
    recorder.default(
        JOBS,
        Reply(200, body={"validReceivers": [], "invalidReceivers": ["+33612345678"], "ids": []}),
    )
    with pytest.raises(PermanentProviderError) as err:
        provider(recorder, http).send(
            make_notification(), Recipient("default"), idempotency_key="k"
        )
    assert err.value.code == "invalid_receivers"


def test_faults_and_secret_hygiene(recorder, http):
    recorder.script(
        JOBS,
        [
            (500, {}, {"message": "Internal server error"}),
            (429, {"Retry-After": "2"}, {"message": "Too many requests"}),
            (
                403,
                {},
                {
                    "errorCode": "INVALID_CREDENTIAL",
                    "httpCode": "403 Forbidden",
                    "message": "This credential is not valid",
                },
            ),
            (
                400,
                {},
                {
                    "errorCode": "INVALID_SIGNATURE",
                    "httpCode": "400 Bad Request",
                    "message": "Invalid signature",
                },
            ),
            Reply(hang=2),
        ],
    )
    p = provider(recorder, http)
    n = make_notification()
    with pytest.raises(RetryableProviderError):
        p.send(n, Recipient("default"), idempotency_key="k")
    with pytest.raises(RetryableProviderError) as rl:
        p.send(n, Recipient("default"), idempotency_key="k")
    assert rl.value.retry_after == 2
    for _ in range(2):
        with pytest.raises(PermanentProviderError) as perm:
            p.send(n, Recipient("default"), idempotency_key="k")
        text = perm.value.describe()
        assert APP_SECRET not in text and CONSUMER not in text
    with pytest.raises(RetryableProviderError):
        p.send(n, Recipient("default"), idempotency_key="k")


def test_private_guard(recorder):
    with pytest.raises(PermanentProviderError):
        provider(recorder, HttpClient()).send(
            make_notification(), Recipient("default"), idempotency_key="k"
        )
    assert recorder.requests == []


def test_check_signed_get(recorder, http):
    path = f"/1.0/sms/{SERVICE}"
    recorder.default(path, Reply(200, body={"name": SERVICE, "creditsLeft": 42.0}))
    result = provider(recorder, http).check()
    assert result.ok and "42" in result.detail
    (req,) = recorder.requests_for(path)
    assert req.method == "GET" and req.body == b""
    assert req.header("X-Ovh-Signature") == expected_signature(
        "GET", recorder.url(path), b"", str(NOW)
    )
    recorder.default(path, Reply(403, body={"message": "This call has not been granted"}))
    assert not provider(recorder, http).check().ok


def test_config_validation():
    base = {
        "application_key": "a",
        "application_secret": "s",
        "consumer_key": "c",
        "service_name": SERVICE,
        "recipients": ["+33612345678"],
    }
    cfg = OvhSmsConfig(**base)
    assert cfg.endpoint == "https://eu.api.ovh.com/1.0"
    assert OvhSmsConfig(**{**base, "endpoint": "ovh-ca"}).endpoint == "https://ca.api.ovh.com/1.0"
    with pytest.raises(ValueError, match="E.164"):
        OvhSmsConfig(**{**base, "recipients": ["0612345678"]})
    with pytest.raises(ValueError):
        OvhSmsConfig(**{**base, "recipients": []})
    with pytest.raises(ValueError):
        OvhSmsConfig(**{**base, "service_name": "../x"})
