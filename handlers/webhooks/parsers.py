"""Pure parsers for inbound alert webhooks: one request body -> ``list[ParsedAlert]``.

Contract for every public ``parse*`` function:

* Input is the already-decoded JSON body (any JSON value) and the request headers.
* Output is a list of ``ParsedAlert`` (possibly empty when the body is a valid webhook that
  carries nothing actionable, e.g. a Sentry ``installation`` event or a paused Grafana
  legacy rule).
* Malformed input (not an object, wrong types, missing required keys, bad timestamps, more
  than ``MAX_ALERTS_PER_PAYLOAD`` alerts) raises ``bot.domain.errors.InputError`` whose message
  starts with the offending field (``alerts[2].status: ...``) and whose ``field`` attribute
  names it. No other exception type escapes (this is fuzzed in the tests).
* No I/O, no clock, no randomness: the same input always gives the same output.

Fingerprints are unique *within a source*; consumers key alerts on ``(source,
fingerprint)``. When the tool has its own stable identity it is used as is (Alertmanager
and Grafana ``fingerprint``, Datadog ``AGGREG_KEY``); otherwise the fingerprint is
``sha256`` over the source and a sorted identity (labels, rule id, issue id...), so the
firing and the resolved notification of one alert always share a fingerprint.

Alertmanager's own advice for idempotent receivers (deduplicate alert instances on
``fingerprint`` + ``startsAt``, groups on ``groupKey``) is served by ``fingerprint``,
``starts_at`` and ``group_key``; the dedup itself happens in the alert flow.

Payload references (our fixtures in ``tests/data/alerts/`` are typed from them):
Alertmanager ``docs/configuration.md`` ``<webhook_config>`` (version "4"); Grafana
``webhook-notifier.md`` (unified alerting, version "1") and the legacy notifier
(``ruleName``/``state``/``evalMatches``); Datadog webhooks integration (default template
plus ``$ALERT_*`` variables); Sentry integration-platform webhooks (``event_alert``,
``metric_alert``, ``issue``, ``error``) and the legacy webhook plugin.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, NoReturn, cast

from bot.domain.alerts import SOURCES, AlertStatus, ParsedAlert
from bot.domain.errors import InputError

__all__ = [
    "MAX_ALERTS_PER_PAYLOAD",
    "SOURCES",
    "AlertStatus",
    "ParsedAlert",
    "parse",
    "parse_alertmanager",
    "parse_custom",
    "parse_datadog",
    "parse_grafana",
    "parse_sentry",
    "verify_sentry_signature",
]

MAX_ALERTS_PER_PAYLOAD: Final = 1000

# Label names that name the affected service, most specific first. ``job`` comes last:
# in Prometheus it names the scrape job, which is often the exporter, not the service.
_SERVICE_LABELS: Final = ("service", "app", "component", "job")
_SEVERITY_LABELS: Final = ("severity", "priority", "level")


# --------------------------------------------------------------------------- helpers


def _fail(field: str, message: str) -> NoReturn:
    raise InputError(f"{field}: {message}", field=field)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _show(value: Any, limit: int = 40) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int too long to print (sys.get_int_max_str_digits)
        return f"<{_type_name(value)}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _obj(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        _fail(field, f"must be a JSON object, got {_type_name(value)}")
    return cast(Mapping[str, Any], value)


def _opt_obj(value: Any, field: str) -> Mapping[str, Any]:
    return {} if value is None else _obj(value, field)


def _scalar_text(value: Any, field: str) -> str | None:
    """A string, or a number/boolean rendered as text; ``None`` for null."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:
            _fail(field, "is a number too long to be an identifier")
    if isinstance(value, float):
        if not math.isfinite(value):
            _fail(field, "must be a finite number")
        return str(int(value)) if value.is_integer() else repr(value)
    _fail(field, f"must be a string, got {_type_name(value)}")


def _opt_text(obj: Mapping[str, Any], key: str, field: str | None = None) -> str | None:
    """``obj[key]`` as stripped text; ``None`` when absent, null or blank."""
    text = _scalar_text(obj.get(key), field or key)
    if text is None:
        return None
    text = text.strip()
    return text or None


def _first(*values: str | None) -> str | None:
    for value in values:
        if value:
            return value
    return None


def _str_map(value: Any, field: str) -> dict[str, str]:
    """A JSON object of scalar values as ``dict[str, str]`` (null values are dropped)."""
    if value is None:
        return {}
    obj = _obj(value, field)
    result: dict[str, str] = {}
    for key, item in obj.items():
        if not isinstance(key, str):
            _fail(field, f"keys must be strings, got {_type_name(key)}")
        if isinstance(item, Mapping | list | tuple):
            _fail(f"{field}.{key}", f"must be a string, got {_type_name(item)}")
        text = _scalar_text(item, f"{field}.{key}")
        if text is not None:
            result[key] = text
    return result


def _status(value: Any, field: str, default: AlertStatus | None = None) -> AlertStatus:
    if value is None:
        if default is not None:
            return default
        _fail(field, "is required ('firing' or 'resolved')")
    if isinstance(value, str):
        word = value.strip().lower()
        if word == "firing":
            return "firing"
        if word == "resolved":
            return "resolved"
    _fail(field, f"must be 'firing' or 'resolved', got {_show(value)}")


_EPOCH_TEXT = re.compile(r"\d{1,20}(?:\.\d{1,9})?", re.ASCII)
_EPOCH_MS_THRESHOLD = 100_000_000_000  # numbers above this are epoch milliseconds (year 5138+)


def _epoch(value: float, field: str) -> datetime | None:
    if not math.isfinite(value):
        _fail(field, "must be a finite epoch timestamp")
    if value <= 0:
        return None
    seconds = value / 1000 if value >= _EPOCH_MS_THRESHOLD else value
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        _fail(field, f"is out of range as an epoch timestamp: {_show(value)}")


def _time(value: Any, field: str) -> datetime | None:
    """RFC 3339 text or epoch seconds/milliseconds -> aware UTC datetime.

    ``None``, ``""``, zero and Go's zero time (year 1) give ``None``. Naive timestamps are
    taken as UTC.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        _fail(field, "must be a timestamp, got boolean")
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            _fail(field, "is out of range as an epoch timestamp")
        return _epoch(number, field)
    if not isinstance(value, str):
        _fail(field, f"must be an RFC 3339 timestamp, got {_type_name(value)}")
    text = value.strip()
    if not text:
        return None
    if _EPOCH_TEXT.fullmatch(text):
        return _epoch(float(text), field)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        _fail(field, f"is not an RFC 3339 timestamp: {_show(value)}")
    if parsed.year <= 1:
        return None  # Go's zero time.Time: "0001-01-01T00:00:00Z" means "not set"
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        _fail(field, f"is out of range: {_show(value)}")


def _check_count(count: int, field: str) -> None:
    if count > MAX_ALERTS_PER_PAYLOAD:
        _fail(field, f"has {count} alerts; at most {MAX_ALERTS_PER_PAYLOAD} per request")


def _hash_identity(source: str, identity: Mapping[str, str]) -> str:
    """sha256 hex of the source and the sorted identity (stable across runs and hosts)."""
    # ensure_ascii keeps lone surrogates (legal in JSON text) encodable.
    canonical = json.dumps([source, sorted(identity.items())], ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _service_hint(labels: Mapping[str, str]) -> str | None:
    return _first(*(labels.get(key, "").strip() for key in _SERVICE_LABELS))


def _severity_hint(labels: Mapping[str, str]) -> str | None:
    return _first(*(labels.get(key, "").strip() for key in _SEVERITY_LABELS))


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == wanted and isinstance(value, str):
            return value
    return None


# ------------------------------------------------------------ Alertmanager and Grafana


def _parse_alertmanager_shaped(
    source: str, payload: Any, url_keys: tuple[str, ...]
) -> list[ParsedAlert]:
    body = _obj(payload, "payload")
    if "alerts" not in body or body.get("alerts") is None:
        _fail("alerts", "is required (an array of alerts)")
    alerts = body["alerts"]
    if not isinstance(alerts, list):
        _fail("alerts", f"must be an array, got {_type_name(alerts)}")
    _check_count(len(alerts), "alerts")
    group_key = _opt_text(body, "groupKey")
    top_status = None if body.get("status") is None else _status(body.get("status"), "status")

    parsed: list[ParsedAlert] = []
    for index, item in enumerate(alerts):
        at = f"alerts[{index}]"
        alert = _obj(item, at)
        status = _status(alert.get("status"), f"{at}.status", default=top_status)
        labels = _str_map(alert.get("labels"), f"{at}.labels")
        annotations = _str_map(alert.get("annotations"), f"{at}.annotations")
        starts_at = _time(alert.get("startsAt"), f"{at}.startsAt")
        ends_at = _time(alert.get("endsAt"), f"{at}.endsAt")
        url = _first(*(_opt_text(alert, key, f"{at}.{key}") for key in url_keys))
        fingerprint = _opt_text(alert, "fingerprint", f"{at}.fingerprint")
        name = labels.get("alertname", "").strip() or f"{source} alert"
        parsed.append(
            ParsedAlert(
                source=source,
                fingerprint=fingerprint or _hash_identity(source, labels),
                status=status,
                name=name,
                summary=_first(
                    annotations.get("summary", "").strip(),
                    annotations.get("message", "").strip(),
                    annotations.get("title", "").strip(),
                )
                or name,
                description=annotations.get("description", "").strip(),
                labels=labels,
                annotations=annotations,
                severity_label=_severity_hint(labels),
                service_hint=_service_hint(labels),
                group_key=group_key,
                starts_at=starts_at,
                ends_at=ends_at if status == "resolved" else None,
                url=url,
                raw=dict(alert),
            )
        )
    return parsed


def parse_alertmanager(payload: Any, headers: Mapping[str, str] | None = None) -> list[ParsedAlert]:
    """Prometheus Alertmanager webhook (version "4"): one ``ParsedAlert`` per ``alerts[]``.

    Requires ``alerts`` (array, at most ``MAX_ALERTS_PER_PAYLOAD``) and a status per alert
    (or at the top level). ``fingerprint`` comes from the alert (sha256 of its labels for
    senders too old to send one); ``group_key`` is ``groupKey``; ``name`` the
    ``alertname`` label; ``summary``/``description`` the annotations of those names;
    ``url`` the ``generatorURL``. Unknown keys (``notification_reason``, ``routeLabels``...)
    are ignored. ``headers`` is unused.
    """
    del headers
    return _parse_alertmanager_shaped("alertmanager", payload, ("generatorURL",))


_GRAFANA_LEGACY_KEYS: Final = ("ruleName", "ruleId", "evalMatches", "ruleUrl")
_GRAFANA_LEGACY_STATES: Final = ("alerting", "ok", "no_data", "paused", "pending")


def parse_grafana(payload: Any, headers: Mapping[str, str] | None = None) -> list[ParsedAlert]:
    """Grafana alerting webhook, unified (version "1") or legacy (Grafana < 9 dashboards).

    A body with ``alerts`` is unified alerting: Alertmanager-shaped, ``url`` is the first
    non-empty of ``panelURL``, ``dashboardURL``, ``generatorURL`` (the deprecated top-level
    ``title``/``state``/``message`` are ignored). A body with ``ruleName``/``ruleId``/
    ``evalMatches`` and ``state`` is legacy alerting and gives at most one alert: ``state``
    ``alerting`` and ``no_data`` fire, ``ok`` resolves; ``paused`` and ``pending`` are not
    signals (a rule being paused or waiting for its ``for`` duration) and give ``[]``.
    ``headers`` is unused.
    """
    del headers
    body = _obj(payload, "payload")
    if "alerts" in body:
        return _parse_alertmanager_shaped(
            "grafana", body, ("panelURL", "dashboardURL", "generatorURL")
        )
    if any(key in body for key in _GRAFANA_LEGACY_KEYS):
        return _parse_grafana_legacy(body)
    _fail(
        "alerts",
        "is required (unified alerting), or send the legacy fields ruleName and state",
    )


def _parse_grafana_legacy(body: Mapping[str, Any]) -> list[ParsedAlert]:
    raw_state = body.get("state")
    if raw_state is None:
        _fail("state", f"is required (one of {', '.join(_GRAFANA_LEGACY_STATES)})")
    state = raw_state.strip().lower() if isinstance(raw_state, str) else None
    if state not in _GRAFANA_LEGACY_STATES:
        _fail(
            "state", f"must be one of {', '.join(_GRAFANA_LEGACY_STATES)}, got {_show(raw_state)}"
        )
    if state in ("paused", "pending"):
        return []
    rule_name = _opt_text(body, "ruleName")
    title = _opt_text(body, "title")
    name = _first(rule_name, title)
    if name is None:
        _fail("ruleName", "is required (or title)")
    rule_id = _opt_text(body, "ruleId")
    org_id = _opt_text(body, "orgId")
    labels = _str_map(body.get("tags"), "tags")
    message = _opt_text(body, "message") or ""

    matches = body.get("evalMatches")
    if matches is not None and not isinstance(matches, list):
        _fail("evalMatches", f"must be an array, got {_type_name(matches)}")
    _check_count(len(matches or []), "evalMatches")
    shown: list[str] = []
    for index, item in enumerate(matches or []):
        match = _obj(item, f"evalMatches[{index}]")
        metric = _opt_text(match, "metric", f"evalMatches[{index}].metric") or "value"
        value = _scalar_text(match.get("value"), f"evalMatches[{index}].value")
        _str_map(match.get("tags"), f"evalMatches[{index}].tags")  # validate only
        shown.append(f"{metric}={value}")

    annotations = {"state": state}
    if message:
        annotations["message"] = message
    if shown:
        annotations["eval_matches"] = ", ".join(shown)
    image = _opt_text(body, "imageUrl")
    if image:
        annotations["image_url"] = image

    identity = (
        {"org_id": org_id or "", "rule_id": rule_id}
        if rule_id is not None
        else {"rule_name": name, **{f"tag:{k}": v for k, v in labels.items()}}
    )
    return [
        ParsedAlert(
            source="grafana",
            fingerprint=_hash_identity("grafana-legacy", identity),
            status="resolved" if state == "ok" else "firing",
            name=name,
            summary=_first(title, rule_name) or name,
            description=message,
            labels=labels,
            annotations=annotations,
            severity_label=_severity_hint(labels),
            service_hint=_service_hint(labels),
            group_key=None,
            starts_at=None,
            ends_at=None,
            url=_opt_text(body, "ruleUrl"),
            raw=dict(body),
        )
    ]


# ------------------------------------------------------------------------------ Datadog

_DD_PLACEHOLDER = re.compile(r"\$[A-Z][A-Z0-9_]*")
_DD_TITLE = re.compile(
    r"\s*(?:\[(?P<priority>P[1-5])\]\s*)?"
    r"\[(?P<transition>(?:Re-)?(?:Triggered|Recovered|Warn|No Data|Renotify))"
    r"(?: on (?P<scope>\{[^\]]*\}))?\]\s*(?P<rest>.*)",
    re.IGNORECASE | re.DOTALL,
)
_DD_RESOLVED = ("recovered", "resolved", "ok")


def _dd_lookup(body: Mapping[str, Any]) -> Callable[..., str | None]:
    """Case-insensitive access to Datadog template keys; unrendered ``$VARS`` are absent."""
    lowered = {key.lower(): key for key in body if isinstance(key, str)}

    def text(*keys: str) -> str | None:
        for key in keys:
            original = lowered.get(key)
            if original is None:
                continue
            value = _opt_text(body, original, key)
            if value and not _DD_PLACEHOLDER.fullmatch(value):
                return value
        return None

    return text


def _dd_tags(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, str):
        items: Iterable[Any] = value.split(",")
    elif isinstance(value, list):
        items = value
    else:
        _fail(field, f"must be a comma-separated string or an array, got {_type_name(value)}")
    labels: dict[str, str] = {}
    for index, item in enumerate(items):
        if not isinstance(item, str):
            _fail(f"{field}[{index}]", f"must be a string, got {_type_name(item)}")
        tag = item.strip()
        if not tag or _DD_PLACEHOLDER.fullmatch(tag):
            continue
        key, _, tag_value = tag.partition(":")
        labels.setdefault(key.strip(), tag_value.strip())
    return labels


def parse_datadog(payload: Any, headers: Mapping[str, str] | None = None) -> list[ParsedAlert]:
    """Datadog webhook (a user template): exactly one alert per body.

    Keys are matched case-insensitively and unrendered ``$VARIABLES`` count as absent. The
    default template's ``title`` (or ``EVENT_TITLE``/``ALERT_TITLE``) is required; ``body``
    is the description (the ``%%%`` markdown fences stripped). Optional: ``ALERT_ID``,
    ``ALERT_TRANSITION``, ``ALERT_TYPE``, ``ALERT_STATUS``, ``ALERT_SCOPE``,
    ``ALERT_PRIORITY``, ``PRIORITY``, ``TAGS`` (comma string or array; ``key:value`` tags
    become labels, so ``service:x`` is the service hint), ``LINK``, ``AGGREG_KEY``,
    ``date``/``last_updated`` (epoch ms).

    Resolved when ``ALERT_TRANSITION`` is ``Recovered`` (else when the title starts with
    ``[Recovered]``, else when ``ALERT_TYPE`` is ``success``). ``name`` is the title without
    its ``[P1] [Triggered on {scope}]`` prefix (also ``summary``; the full title is the
    ``title`` annotation), so the trigger and the recovery match.
    Fingerprint: ``AGGREG_KEY``; else sha256 of ``ALERT_ID`` + scope; else sha256 of the
    org, the scope and the bare title. Severity word: ``ALERT_PRIORITY``, a ``P1``-``P5``
    ``PRIORITY``, the title's ``[Pn]``, ``ALERT_TYPE``, ``warning`` for a ``Warn``
    transition, then ``PRIORITY``. ``headers`` is unused.
    """
    del headers
    body = _obj(payload, "payload")
    text = _dd_lookup(body)
    title = text("title", "event_title", "alert_title")
    if title is None:
        _fail("title", "is required (the default Datadog payload sends $EVENT_TITLE)")

    org_value = next(
        (v for k, v in body.items() if isinstance(k, str) and k.lower() == "org"), None
    )
    org = _opt_obj(org_value, "org")
    org_id = _opt_text(org, "id", "org.id") or text("org_id") or ""
    tags_value = next(
        (v for k, v in body.items() if isinstance(k, str) and k.lower() == "tags"), None
    )
    labels = _dd_tags(tags_value, "tags")
    scope = text("alert_scope")
    if scope:
        for key, value in _dd_tags(scope, "alert_scope").items():
            labels.setdefault(key, value)

    title_match = _DD_TITLE.fullmatch(title)
    bare_title = (title_match.group("rest").strip() if title_match else "") or title
    title_scope = title_match.group("scope") if title_match else None
    transition = text("alert_transition") or (
        title_match.group("transition") if title_match else None
    )
    alert_type = text("alert_type")
    if transition:
        resolved = transition.lower() in _DD_RESOLVED
    else:
        resolved = (alert_type or "").lower() == "success"
    status: AlertStatus = "resolved" if resolved else "firing"

    priority = text("priority")
    severity_label = _first(
        text("alert_priority"),
        priority if priority and re.fullmatch(r"[Pp][1-5]", priority) else None,
        title_match.group("priority") if title_match else None,
        alert_type,
        "warning" if transition and "warn" in transition.lower() else None,
        priority,
    )

    aggreg_key = text("aggreg_key")
    alert_id = text("alert_id")
    if aggreg_key:
        fingerprint = aggreg_key
    elif alert_id:
        fingerprint = _hash_identity(
            "datadog", {"alert_id": alert_id, "scope": scope or title_scope or ""}
        )
    else:
        fingerprint = _hash_identity(
            "datadog", {"org": org_id, "scope": title_scope or "", "title": bare_title}
        )

    description = (text("body", "event_msg", "text_only_msg") or "").strip()
    if description.startswith("%%%") and description.endswith("%%%") and len(description) >= 6:
        description = description[3:-3].strip()
    annotations: dict[str, str] = {"title": title} if title != bare_title else {}
    for key in ("alert_status", "alert_transition", "alert_type", "event_type", "alert_metric"):
        found = text(key)
        if found:
            annotations[key] = found

    when = _time(text("date", "date_posix", "last_updated"), "date")
    return [
        ParsedAlert(
            source="datadog",
            fingerprint=fingerprint,
            status=status,
            name=bare_title,
            # Without the state prefix Datadog adds ([P2] [Triggered on {...}]): the
            # incident title must not say "Triggered" once it recovers. The full title
            # stays in the ``title`` annotation.
            summary=bare_title,
            description=description,
            labels=labels,
            annotations=annotations,
            severity_label=severity_label,
            service_hint=_service_hint(labels),
            group_key=None,
            starts_at=None if resolved else when,
            ends_at=when if resolved else None,
            url=text("link", "url"),
            raw=dict(body),
        )
    ]


# ------------------------------------------------------------------------------- Sentry

_SENTRY_NOT_ALERTS: Final = frozenset(
    {"installation", "comment", "seer", "preprod_artifact", "uptime", "workflow"}
)
_SENTRY_METRIC_ACTIONS: Final = ("critical", "warning", "resolved")
_SENTRY_PROJECT_IN_URL = re.compile(r"/projects/[^/]+/([^/]+)/")


def _sentry_tags(value: Any, field: str) -> dict[str, str]:
    """Sentry tags: ``[[key, value], ...]``, ``[{"key", "value"}, ...]`` or an object."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return _str_map(value, field)
    if not isinstance(value, list):
        _fail(field, f"must be an array of [key, value] pairs, got {_type_name(value)}")
    labels: dict[str, str] = {}
    for index, item in enumerate(value):
        at = f"{field}[{index}]"
        if isinstance(item, list) and len(item) == 2:
            key, tag_value = item
        elif isinstance(item, Mapping):
            key, tag_value = item.get("key"), item.get("value")
        else:
            _fail(at, "must be a [key, value] pair")
        if not isinstance(key, str):
            _fail(at, f"tag key must be a string, got {_type_name(key)}")
        if isinstance(tag_value, Mapping | list):
            _fail(at, f"tag value must be a string, got {_type_name(tag_value)}")
        text = _scalar_text(tag_value, at)
        if text is not None:
            labels.setdefault(key, text)
    return labels


def _sentry_issue_fingerprint(issue_id: str | None, identity: Mapping[str, str]) -> str:
    return f"issue:{issue_id}" if issue_id else _hash_identity("sentry", identity)


def _sentry_event_alert(body: Mapping[str, Any], data_key: str) -> ParsedAlert:
    data = _obj(body.get("data"), "data")
    at = f"data.{data_key}"
    if data.get(data_key) is None:
        _fail(at, "is required")
    event = _obj(data.get(data_key), at)
    issue_alert = _opt_obj(data.get("issue_alert"), "data.issue_alert")
    rule = _first(
        _opt_text(data, "triggered_rule", "data.triggered_rule"),
        _opt_text(issue_alert, "title", "data.issue_alert.title"),
    )
    metadata = _opt_obj(event.get("metadata"), f"{at}.metadata")
    title = _first(
        _opt_text(event, "title", f"{at}.title"),
        _opt_text(event, "message", f"{at}.message"),
        _opt_text(metadata, "value", f"{at}.metadata.value"),
    )
    labels = _sentry_tags(event.get("tags"), f"{at}.tags")
    api_url = _opt_text(event, "url", f"{at}.url") or ""
    project_match = _SENTRY_PROJECT_IN_URL.search(api_url)
    project = project_match.group(1) if project_match else None
    if project:
        labels.setdefault("project", project)
    level = _opt_text(event, "level", f"{at}.level") or labels.get("level")
    environment = _opt_text(event, "environment", f"{at}.environment")
    if environment:
        labels.setdefault("environment", environment)
    issue_id = _opt_text(event, "issue_id", f"{at}.issue_id") or _opt_text(
        event, "group_id", f"{at}.group_id"
    )
    name = _first(rule, title) or "Sentry event"
    starts_at = _time(event.get("datetime"), f"{at}.datetime") or _time(
        event.get("timestamp"), f"{at}.timestamp"
    )
    return ParsedAlert(
        source="sentry",
        fingerprint=_sentry_issue_fingerprint(
            issue_id, {"project": project or "", "title": title or name}
        ),
        status="firing",
        name=name,
        summary=title or name,
        description=_first(
            _opt_text(event, "culprit", f"{at}.culprit"),
            _opt_text(event, "location", f"{at}.location"),
        )
        or "",
        labels=labels,
        annotations={"triggered_rule": rule} if rule else {},
        severity_label=level,
        service_hint=_first(_service_hint(labels), project),
        group_key=None,
        starts_at=starts_at,
        ends_at=None,
        url=_first(_opt_text(event, "web_url", f"{at}.web_url"), api_url or None),
        raw=dict(body),
    )


def _sentry_metric_alert(body: Mapping[str, Any]) -> ParsedAlert:
    raw_action = body.get("action")
    action = raw_action.strip().lower() if isinstance(raw_action, str) else None
    if action not in _SENTRY_METRIC_ACTIONS:
        _fail("action", f"must be one of critical, warning, resolved, got {_show(raw_action)}")
    data = _obj(body.get("data"), "data")
    if data.get("metric_alert") is None:
        _fail("data.metric_alert", "is required")
    metric = _obj(data.get("metric_alert"), "data.metric_alert")
    rule = _opt_obj(metric.get("alert_rule"), "data.metric_alert.alert_rule")
    rule_name = _opt_text(rule, "name", "data.metric_alert.alert_rule.name")
    title = _opt_text(data, "description_title", "data.description_title")
    projects = metric.get("projects") or rule.get("projects") or []
    if not isinstance(projects, list):
        _fail("data.metric_alert.projects", f"must be an array, got {_type_name(projects)}")
    project = _scalar_text(projects[0], "data.metric_alert.projects[0]") if projects else None
    labels: dict[str, str] = {}
    if project:
        labels["project"] = project
    environment = _opt_text(rule, "environment", "data.metric_alert.alert_rule.environment")
    if environment:
        labels["environment"] = environment
    incident_id = _opt_text(metric, "id", "data.metric_alert.id")
    rule_id = _opt_text(rule, "id", "data.metric_alert.alert_rule.id")
    if incident_id:
        fingerprint = f"metric_alert:{incident_id}"
    elif rule_id:
        fingerprint = f"metric_alert_rule:{rule_id}"
    else:
        fingerprint = _hash_identity("sentry", {"rule": rule_name or title or ""})
    resolved = action == "resolved"
    name = _first(rule_name, _opt_text(metric, "title", "data.metric_alert.title"), title)
    return ParsedAlert(
        source="sentry",
        fingerprint=fingerprint,
        status="resolved" if resolved else "firing",
        name=name or "Sentry metric alert",
        summary=title or name or "Sentry metric alert",
        description=_opt_text(data, "description_text", "data.description_text") or "",
        labels=labels,
        annotations={"action": action},
        severity_label=action,
        service_hint=project,
        group_key=None,
        starts_at=_time(metric.get("date_started"), "data.metric_alert.date_started")
        or _time(metric.get("date_detected"), "data.metric_alert.date_detected"),
        ends_at=_time(metric.get("date_closed"), "data.metric_alert.date_closed")
        if resolved
        else None,
        url=_opt_text(data, "web_url", "data.web_url"),
        raw=dict(body),
    )


# Issue webhook actions that are signals; assignment and archiving are triage done inside
# Sentry, not a change in the problem, and give no alert.
_SENTRY_ISSUE_SIGNALS: Final = frozenset({"created", "unresolved", "resolved"})


def _sentry_issue(body: Mapping[str, Any]) -> list[ParsedAlert]:
    action = _opt_text(body, "action")
    data = _obj(body.get("data"), "data")
    if data.get("issue") is None:
        _fail("data.issue", "is required")
    issue = _obj(data.get("issue"), "data.issue")
    if action is not None and action.lower() not in _SENTRY_ISSUE_SIGNALS:
        return []
    issue_status = (_opt_text(issue, "status", "data.issue.status") or "").lower()
    resolved = (action or "").lower() == "resolved" or (
        action is None and issue_status == "resolved"
    )
    project_obj = issue.get("project")
    project = (
        _opt_text(_obj(project_obj, "data.issue.project"), "slug", "data.issue.project.slug")
        if isinstance(project_obj, Mapping)
        else _scalar_text(project_obj, "data.issue.project")
    )
    title = _opt_text(issue, "title", "data.issue.title") or "Sentry issue"
    level = _opt_text(issue, "level", "data.issue.level")
    labels: dict[str, str] = {}
    if project:
        labels["project"] = project
    if level:
        labels["level"] = level
    short_id = _opt_text(issue, "shortId", "data.issue.shortId")
    issue_id = _opt_text(issue, "id", "data.issue.id")
    return [
        ParsedAlert(
            source="sentry",
            fingerprint=_sentry_issue_fingerprint(
                issue_id, {"project": project or "", "title": title}
            ),
            status="resolved" if resolved else "firing",
            name=title,
            summary=f"{short_id}: {title}" if short_id else title,
            description=_opt_text(issue, "culprit", "data.issue.culprit") or "",
            labels=labels,
            annotations={"action": action} if action else {},
            severity_label=level,
            service_hint=project,
            group_key=None,
            starts_at=_time(issue.get("firstSeen"), "data.issue.firstSeen"),
            ends_at=None,
            url=_first(
                _opt_text(issue, "web_url", "data.issue.web_url"),
                _opt_text(issue, "permalink", "data.issue.permalink"),
            ),
            raw=dict(body),
        )
    ]


def _sentry_plugin(body: Mapping[str, Any]) -> ParsedAlert:
    event = _opt_obj(body.get("event"), "event")
    labels = _sentry_tags(event.get("tags"), "event.tags")
    metadata = _opt_obj(event.get("metadata"), "event.metadata")
    project = _first(_opt_text(body, "project_slug"), _opt_text(body, "project"))
    if project:
        labels.setdefault("project", project)
    rules = body.get("triggering_rules")
    if rules is not None and not isinstance(rules, list):
        _fail("triggering_rules", f"must be an array, got {_type_name(rules)}")
    rule = _scalar_text(rules[0], "triggering_rules[0]") if rules else None
    message = _first(
        _opt_text(body, "message"),
        _opt_text(metadata, "title", "event.metadata.title"),
        _opt_text(body, "culprit"),
    )
    issue_id = _opt_text(body, "id")
    name = _first(rule, message) or "Sentry event"
    return ParsedAlert(
        source="sentry",
        fingerprint=_sentry_issue_fingerprint(
            issue_id, {"project": project or "", "title": message or name}
        ),
        status="firing",
        name=name,
        summary=message or name,
        description=_opt_text(body, "culprit") or "",
        labels=labels,
        annotations={"triggered_rule": rule} if rule else {},
        severity_label=_opt_text(body, "level") or labels.get("level"),
        service_hint=_first(_service_hint(labels), project),
        group_key=None,
        starts_at=_time(event.get("received"), "event.received"),
        ends_at=None,
        url=_opt_text(body, "url"),
        raw=dict(body),
    )


def _guess_sentry_resource(body: Mapping[str, Any]) -> str:
    data = body.get("data")
    if isinstance(data, Mapping):
        for key, resource in (
            ("metric_alert", "metric_alert"),
            ("issue", "issue"),
            ("error", "error"),
            ("event", "event_alert"),
        ):
            if key in data:
                return resource
    if "project" in body and any(key in body for key in ("culprit", "level", "event", "id")):
        return "plugin"
    _fail(
        "Sentry-Hook-Resource",
        "header is missing and the body is not a known Sentry webhook "
        "(data.event, data.metric_alert, data.issue or the legacy plugin format)",
    )


def parse_sentry(payload: Any, headers: Mapping[str, str] | None = None) -> list[ParsedAlert]:
    """Sentry integration-platform webhooks, dispatched on ``Sentry-Hook-Resource``.

    * ``event_alert`` (issue alert rule fired): ``data.event`` required; one firing alert
      named after ``data.triggered_rule``; severity word = event ``level``; fingerprint
      ``issue:<issue_id>``; service hint = the project slug from the event's API URL.
    * ``metric_alert``: ``action`` in ``critical|warning|resolved`` (the severity word);
      ``data.metric_alert`` required; fingerprint ``metric_alert:<incident id>`` so the
      critical, warning and resolved notifications of one Sentry incident match.
    * ``issue``: ``created``/``unresolved`` fire, ``resolved`` resolves (fingerprint
      ``issue:<id>``, shared with ``event_alert``); ``assigned``/``archived``/``ignored``
      give ``[]``.
    * ``error``: like ``event_alert`` with ``data.error``.
    * ``installation``, ``comment`` and other non-alert resources give ``[]``.

    Without the header the resource is inferred from the body; the legacy webhook plugin
    body (``id, project, culprit, level, url, message, event``) is recognised this way.
    Authenticate the request with ``verify_sentry_signature`` before calling this.
    """
    body = _obj(payload, "payload")
    resource_header = _header(headers, "Sentry-Hook-Resource")
    resource = (resource_header or _guess_sentry_resource(body)).strip().lower()
    if resource == "event_alert":
        return [_sentry_event_alert(body, "event")]
    if resource == "error":
        return [_sentry_event_alert(body, "error")]
    if resource == "metric_alert":
        return [_sentry_metric_alert(body)]
    if resource == "issue":
        return _sentry_issue(body)
    if resource == "plugin":
        return [_sentry_plugin(body)]
    if resource in _SENTRY_NOT_ALERTS:
        return []
    _fail("Sentry-Hook-Resource", f"unsupported resource {_show(resource_header)}")


def verify_sentry_signature(body: bytes, signature: str | None, client_secret: str) -> bool:
    """True when ``signature`` (the ``Sentry-Hook-Signature`` header) is the hex
    HMAC-SHA256 of the raw request ``body`` keyed with the integration's client secret.

    Constant-time comparison; case and an optional ``sha256=`` prefix are tolerated; a
    missing signature or an empty secret is never valid.
    """
    if not signature or not client_secret:
        return False
    expected = hmac.new(client_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    given_text = signature.strip().lower()
    if given_text.startswith("sha256="):
        given_text = given_text[len("sha256=") :]
    given = given_text.encode("ascii", errors="replace")
    return hmac.compare_digest(expected.encode("ascii"), given)


# ------------------------------------------------------------------------------- custom


def _parse_custom_alert(alert: Mapping[str, Any], at: str) -> ParsedAlert:
    name = _opt_text(alert, "name", f"{at}.name")
    if name is None:
        _fail(f"{at}.name", "is required (a non-empty string)")
    status = _status(alert.get("status"), f"{at}.status", default="firing")
    labels = _str_map(alert.get("labels"), f"{at}.labels")
    annotations = _str_map(alert.get("annotations"), f"{at}.annotations")
    service = _opt_text(alert, "service", f"{at}.service")
    severity = _opt_text(alert, "severity", f"{at}.severity")
    fingerprint = _opt_text(alert, "fingerprint", f"{at}.fingerprint")
    identity = {
        "name": name,
        "service": service or "",
        **{f"label:{k}": v for k, v in labels.items()},
    }
    ends_at = _time(alert.get("ends_at"), f"{at}.ends_at")
    return ParsedAlert(
        source="custom",
        fingerprint=fingerprint or _hash_identity("custom", identity),
        status=status,
        name=name,
        summary=_opt_text(alert, "summary", f"{at}.summary") or name,
        description=_opt_text(alert, "description", f"{at}.description") or "",
        labels=labels,
        annotations=annotations,
        severity_label=severity or _severity_hint(labels),
        service_hint=service or _service_hint(labels),
        group_key=_opt_text(alert, "group_key", f"{at}.group_key"),
        starts_at=_time(alert.get("starts_at"), f"{at}.starts_at"),
        ends_at=ends_at if status == "resolved" else None,
        url=_opt_text(alert, "url", f"{at}.url"),
        raw=dict(alert),
    )


def parse_custom(payload: Any, headers: Mapping[str, str] | None = None) -> list[ParsedAlert]:
    """The documented IMAS format, for scripts and tools without a native parser.

    Either ``{"alerts": [ALERT, ...]}`` or a single ``ALERT`` object at the top level::

        {"name": "Disk full",            # required
         "status": "firing",             # or "resolved"; default "firing"
         "severity": "critical",         # raw word, mapped like any other source
         "service": "redis-prod",
         "summary": "...", "description": "...",
         "labels": {"env": "prod"}, "annotations": {},
         "fingerprint": "disk-full-db1", # default: sha256 of name + service + labels
         "group_key": "...",             # alerts sharing it share one incident
         "starts_at": "2024-05-01T10:00:00Z", "ends_at": null,
         "url": "https://..."}

    ``headers`` is unused.
    """
    del headers
    body = _obj(payload, "payload")
    if "alerts" not in body:
        return [_parse_custom_alert(body, "payload")]
    alerts = body["alerts"]
    if not isinstance(alerts, list):
        _fail("alerts", f"must be an array, got {_type_name(alerts)}")
    _check_count(len(alerts), "alerts")
    return [
        _parse_custom_alert(_obj(item, f"alerts[{index}]"), f"alerts[{index}]")
        for index, item in enumerate(alerts)
    ]


# ------------------------------------------------------------------------------ dispatch

_PARSERS: Final[dict[str, Callable[[Any, Mapping[str, str] | None], list[ParsedAlert]]]] = {
    "alertmanager": parse_alertmanager,
    "grafana": parse_grafana,
    "datadog": parse_datadog,
    "sentry": parse_sentry,
    "custom": parse_custom,
}


def parse(source: str, payload: Any, headers: Mapping[str, str]) -> list[ParsedAlert]:
    """Parse one webhook body from ``source`` (one of ``SOURCES``) into alerts.

    Raises ``InputError`` (field ``source``) for an unknown source and for any malformed
    body; never any other exception. See the module docstring for the contract.
    """
    parser = _PARSERS.get(source) if isinstance(source, str) else None
    if parser is None:
        _fail(
            "source", f"unknown alert source {_show(source)}; expected one of {', '.join(SOURCES)}"
        )
    return parser(payload, headers)
