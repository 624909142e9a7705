"""Fuzzing the alert webhooks and the incident-creation body: whatever arrives, the answer
is never a 5xx, and a rejected request (4xx) writes nothing.

100 examples per test by default (deterministic); ``IMAS_FUZZ_EXAMPLES=2000`` for a longer
hunt.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api_helpers import Api, api_fixture

FUZZ = settings(
    max_examples=int(os.environ.get("IMAS_FUZZ_EXAMPLES", "100")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text that databases dislike: NUL, lone surrogates, long strings, digits.
nasty_char = st.one_of(
    st.characters(exclude_categories=()), st.sampled_from(["\x00", "\ud800", "\udfff"])
)
text = st.one_of(
    st.text(nasty_char, max_size=30),
    st.sampled_from(
        [
            "",
            " ",
            "firing",
            "resolved",
            "critical",
            "redis-prod",
            "0001-01-01T00:00:00Z",
            "2024-05-02T07:53:11.102Z",
            "99999999999999999999999",
            "²",
            "x" * 700,
        ]
    ),
)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
)
json_value = st.recursive(
    scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=20,
)
# Values a real sender would send, so that many examples get through to the database.
fine_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40
).filter(str.strip)
timestamp = st.datetimes().map(lambda d: d.isoformat() + "Z")
status = st.sampled_from(["firing", "resolved"])
service = st.sampled_from(["redis-prod", "postgres-main", "legacy", "unknown-svc"])
severity_word = st.sampled_from(["critical", "warning", "P2", "error", "info"])


def mostly(good: Any, bad: Any) -> Any:
    """Valid values four times as often as hostile ones."""
    return st.one_of(good, good, good, good, bad)


labels = st.fixed_dictionaries(
    {"alertname": mostly(fine_text, scalar), "service": mostly(service, scalar)},
    optional={"severity": mostly(severity_word, scalar), "instance": fine_text, "extra": text},
)
am_alert = st.fixed_dictionaries(
    {"status": mostly(status, scalar), "labels": mostly(labels, json_value)},
    optional={
        "annotations": mostly(
            st.dictionaries(st.sampled_from(["summary", "description"]), fine_text), json_value
        ),
        "startsAt": mostly(timestamp, scalar),
        "endsAt": mostly(timestamp, scalar),
        "fingerprint": mostly(st.text("0123456789abcdef", min_size=1, max_size=16), scalar),
        "generatorURL": text,
    },
)
alertmanager = st.fixed_dictionaries(
    {"alerts": mostly(st.lists(am_alert, min_size=1, max_size=4), json_value)},
    optional={
        "version": st.just("4"),
        "groupKey": mostly(fine_text, scalar),
        "status": mostly(status, scalar),
    },
)
custom_alert = st.fixed_dictionaries(
    {"name": mostly(fine_text, scalar)},
    optional={
        "status": mostly(status, scalar),
        "service": mostly(service, text),
        "severity": mostly(severity_word, scalar),
        "fingerprint": mostly(fine_text, scalar),
        "group_key": mostly(fine_text, scalar),
        "labels": mostly(st.dictionaries(fine_text, fine_text, max_size=3), json_value),
        "starts_at": mostly(timestamp, scalar),
        "ends_at": mostly(timestamp, scalar),
    },
)
custom = st.one_of(
    custom_alert, st.fixed_dictionaries({"alerts": st.lists(custom_alert, max_size=4)})
)


def encode(value: Any) -> bytes:
    return json.dumps(value).encode()


raw_bodies = st.one_of(
    st.binary(max_size=200),
    json_value.map(encode),
    st.sampled_from(
        [
            b"NaN",
            b"1e999",
            b'{"alerts": [Infinity]}',
            b"[" * 500 + b"]" * 500,
            b'{"a": ' * 100 + b"1" + b"}" * 100,
            b"9" * 5000,
            b'"\\ud800"',
            b"\xef\xbb\xbf{}",
        ]
    ),
)


@pytest.fixture
def api(make_settings: Any) -> Iterator[Api]:
    yield from api_fixture(make_settings, raise_errors=False)


def check(api: Api, response: Any, before: dict[str, int]) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert isinstance(response.json()["detail"], str)
        assert api.counts() == before


@FUZZ
@given(
    source=st.sampled_from(["alertmanager", "grafana", "datadog", "sentry", "custom"]),
    body=raw_bodies,
    resource=st.sampled_from(
        ["event_alert", "metric_alert", "issue", "error", "installation", "bogus"]
    ),
)
def test_raw_webhook_bodies(api: Api, source: str, body: bytes, resource: str) -> None:
    before = api.counts()
    check(api, api.webhook(source, body, **{"Sentry-Hook-Resource": resource}), before)


@FUZZ
@given(
    sent=st.one_of(
        alertmanager.map(lambda p: ("alertmanager", p)), custom.map(lambda p: ("custom", p))
    )
)
def test_structured_webhook_bodies(api: Api, sent: tuple[str, Any]) -> None:
    source, payload = sent
    before = api.counts()
    check(api, api.webhook(source, payload), before)
    if source == "alertmanager":
        before = api.counts()
        check(api, api.webhook("grafana", payload), before)


incident_body = st.fixed_dictionaries(
    {
        "title": mostly(fine_text, scalar),
        "service": mostly(
            st.sampled_from(["redis-prod", "1", 2, "legacy", "99999999999", "²"]),
            st.one_of(st.integers(min_value=-(2**70), max_value=2**70), text, scalar),
        ),
        "severity": mostly(
            st.sampled_from(["SEV1_CRITICAL", "sev2", "SEV3_MEDIUM", "SEV4_LOW"]), scalar
        ),
    },
    optional={
        "description": mostly(fine_text, scalar),
        "scopes": st.one_of(st.just([]), st.lists(text, max_size=2), json_value),
        "lead": mostly(st.sampled_from(["alice@example.com", "U0ALICE01"]), scalar),
        "private": st.one_of(st.booleans(), scalar),
        "detected_at": mostly(timestamp, scalar),
    },
)


@FUZZ
@given(body=st.one_of(incident_body, json_value))
def test_incident_create_bodies(api: Api, body: Any) -> None:
    before = api.counts()
    response = api.client.post(
        "/api/v1/incidents/",
        content=encode(body),
        headers={**api.auth("responder"), "Content-Type": "application/json"},
    )
    check(api, response, before)


@FUZZ
@given(body=raw_bodies, path=st.sampled_from(["/api/v1/incidents/", "/api/auth/token/"]))
def test_raw_api_bodies(api: Api, body: bytes, path: str) -> None:
    before = api.counts()
    response = api.client.post(
        path, content=body, headers={**api.auth("responder"), "Content-Type": "application/json"}
    )
    check(api, response, before)
