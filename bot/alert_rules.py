"""Alert rules: which alerts map to which service and severity, and what they may do.

Pure functions over ``handlers.webhooks.parsers.ParsedAlert``; no database, no I/O. The
alert flow loads the configured rules (``alert_rules:`` in the configuration file, one
``AlertRuleSpec.from_config`` per entry, in file order) and for each parsed alert calls
``match_rule`` (first match wins), then ``resolve_severity``, ``resolve_service`` and
``incident_key``.

Severity, rule first then the default words (case-insensitive):

=====================================================  ===============
``critical fatal p1 page sev1 disaster``               ``SEV1_CRITICAL``
``high error p2 major sev2``                           ``SEV2_HIGH``
``warning warn medium p3 minor sev3``                  ``SEV3_MEDIUM``
anything else, or no severity word at all              ``SEV4_LOW``
=====================================================  ===============
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from bot.domain.alerts import SOURCES, ParsedAlert
from bot.domain.enums import severity_value
from bot.domain.errors import InputError

__all__ = [
    "DEFAULT_SEVERITY_MAP",
    "REFIRE_POLICIES",
    "RULE_SOURCES",
    "AlertRuleSpec",
    "default_severity",
    "incident_key",
    "match_rule",
    "resolve_service",
    "resolve_severity",
]

RULE_SOURCES: Final = (*SOURCES, "any")
MAX_SUPPRESSION_WINDOW_MINUTES: Final = 7 * 24 * 60

DEFAULT_SEVERITY_MAP: Final[Mapping[str, str]] = {
    **dict.fromkeys(("critical", "fatal", "p1", "page", "sev1", "disaster"), "SEV1_CRITICAL"),
    **dict.fromkeys(("high", "error", "p2", "major", "sev2"), "SEV2_HIGH"),
    **dict.fromkeys(("warning", "warn", "medium", "p3", "minor", "sev3"), "SEV3_MEDIUM"),
}
_FALLBACK_SEVERITY: Final = "SEV4_LOW"

_RULE_KEYS: Final = frozenset(
    {
        "name",
        "source",
        "match",
        "service",
        "severity_mapping",
        "auto_create",
        "auto_resolve",
        "suppression_window_minutes",
        "on_refire",
        "reopen_within_minutes",
    }
)
REFIRE_POLICIES: Final = ("new_incident", "reopen", "ignore")
DEFAULT_REOPEN_WITHIN_MINUTES: Final = 15
_MATCH_KEYS: Final = frozenset({"alertname", "labels"})


def default_severity(word: str | None) -> str:
    """The IMAS severity for a raw severity word (``DEFAULT_SEVERITY_MAP``, else SEV4_LOW).

    Case and surrounding blanks are ignored; ``None`` gives ``SEV4_LOW``.
    """
    if not word:
        return _FALLBACK_SEVERITY
    return DEFAULT_SEVERITY_MAP.get(word.strip().lower(), _FALLBACK_SEVERITY)


def _rule_error(rule: str, key: str, message: str) -> InputError:
    return InputError(f"alert rule {rule!r}: {key}: {message}", field=f"alert_rules.{key}")


@dataclass(frozen=True)
class AlertRuleSpec:
    """One validated alert rule.

    Matching (all given conditions must hold): ``source`` equals the alert's source (or is
    ``"any"``); ``name_regex`` full-matches the alert name, case-sensitively as in
    Prometheus; every ``label_matchers`` entry equals the alert's label exactly.

    Effects: ``service`` overrides the alert's service hint; ``severity_mapping`` maps
    ``label name -> label value -> severity`` (values compared case-insensitively; the
    label ``severity`` falls back to the alert's raw severity word when the alert has no
    such label, so one mapping also covers Datadog priorities and Sentry levels);
    ``auto_create`` opens an incident for a firing alert with no open incident;
    ``auto_resolve`` resolves that incident when all its alerts resolve; duplicates within
    ``suppression_window_minutes`` fold into the existing alert.

    Re-fire (an alert firing again after its incident was resolved; a replay of the
    occurrence that was resolved, same ``startsAt``, is not one): ``on_refire`` says what
    happens. ``new_incident`` (default) opens a new incident as ``auto_create`` would,
    except within ``reopen_within_minutes`` (default 15) of the resolution, when it
    reopens the resolved one; ``reopen`` always reopens it; ``ignore`` stores the alert
    and only notes the re-fire in the resolved incident's timeline.

    Construction validates (``InputError`` naming the rule and key) and normalises the
    mapping's values to lower case; ``from_config`` also checks the config shape.
    """

    name: str
    source: str = "any"
    name_regex: str | None = None
    label_matchers: dict[str, str] = field(default_factory=dict)
    service: str | None = None
    severity_mapping: dict[str, dict[str, str]] = field(default_factory=dict)
    auto_create: bool = False
    auto_resolve: bool = False
    suppression_window_minutes: int = 5
    on_refire: str = "new_incident"
    reopen_within_minutes: int = DEFAULT_REOPEN_WITHIN_MINUTES
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.source not in RULE_SOURCES:
            raise _rule_error(
                self.name,
                "source",
                f"must be one of {', '.join(RULE_SOURCES)}, got {self.source!r}",
            )
        pattern = None
        if self.name_regex is not None:
            try:
                pattern = re.compile(self.name_regex)
            except re.error as exc:
                raise _rule_error(
                    self.name, "match.alertname", f"is not a valid regular expression: {exc}"
                ) from None
        object.__setattr__(self, "_pattern", pattern)
        normalised: dict[str, dict[str, str]] = {}
        for label, mapping in self.severity_mapping.items():
            values: dict[str, str] = {}
            for value, severity in mapping.items():
                try:
                    values[value.lower()] = severity_value(severity)
                except ValueError as exc:
                    raise _rule_error(
                        self.name, f"severity_mapping.{label}.{value}", str(exc)
                    ) from None
            normalised[label] = values
        object.__setattr__(self, "severity_mapping", normalised)
        if self.on_refire not in REFIRE_POLICIES:
            raise _rule_error(
                self.name,
                "on_refire",
                f"must be one of {', '.join(REFIRE_POLICIES)}, got {self.on_refire!r}",
            )
        reopen = self.reopen_within_minutes
        if isinstance(reopen, bool) or not 0 <= reopen <= MAX_SUPPRESSION_WINDOW_MINUTES:
            raise _rule_error(
                self.name,
                "reopen_within_minutes",
                f"must be an integer from 0 to {MAX_SUPPRESSION_WINDOW_MINUTES}, got {reopen!r}",
            )
        window = self.suppression_window_minutes
        if isinstance(window, bool) or not 0 <= window <= MAX_SUPPRESSION_WINDOW_MINUTES:
            raise _rule_error(
                self.name,
                "suppression_window_minutes",
                f"must be an integer from 0 to {MAX_SUPPRESSION_WINDOW_MINUTES}, got {window!r}",
            )

    @classmethod
    def from_config(cls, d: Mapping[str, Any]) -> AlertRuleSpec:
        """Build a rule from one ``alert_rules:`` entry of the configuration file.

        Keys: ``name`` (required), ``source`` (default ``any``), ``match: {alertname:
        REGEX, labels: {k: v}}``, ``service``, ``severity_mapping: {label: {value: SEV}}``,
        ``auto_create`` / ``auto_resolve`` (booleans, default false),
        ``suppression_window_minutes`` (default 5), ``on_refire`` (``new_incident``,
        ``reopen`` or ``ignore``) and ``reopen_within_minutes`` (default 15). Unknown keys, wrong types, a bad
        regular expression or an unknown severity raise ``InputError`` naming the rule
        and the key. Severity names may be written in any case.
        """
        if not isinstance(d, Mapping):
            raise InputError("alert rule: must be a mapping", field="alert_rules")
        name = d.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InputError(
                "alert rule: name: is required (a non-empty string)", field="alert_rules.name"
            )
        name = name.strip()
        unknown = sorted(str(key) for key in d if key not in _RULE_KEYS)
        if unknown:
            raise _rule_error(
                name, unknown[0], f"unknown key; expected one of {', '.join(sorted(_RULE_KEYS))}"
            )

        source = d.get("source", "any")
        if not isinstance(source, str):
            raise _rule_error(name, "source", f"must be a string, got {source!r}")

        match = d.get("match") or {}
        if not isinstance(match, Mapping):
            raise _rule_error(name, "match", "must be a mapping")
        unknown = sorted(str(key) for key in match if key not in _MATCH_KEYS)
        if unknown:
            raise _rule_error(
                name, f"match.{unknown[0]}", "unknown key; expected alertname, labels"
            )
        name_regex = match.get("alertname")
        if name_regex is not None and not isinstance(name_regex, str):
            raise _rule_error(name, "match.alertname", "must be a string (a regular expression)")
        labels = _string_map(name, "match.labels", match.get("labels"))

        service = d.get("service")
        if service is not None and (not isinstance(service, str) or not service.strip()):
            raise _rule_error(name, "service", "must be a non-empty string")

        raw_mapping = d.get("severity_mapping") or {}
        if not isinstance(raw_mapping, Mapping):
            raise _rule_error(
                name, "severity_mapping", "must be a mapping of label -> value -> severity"
            )
        severity_mapping: dict[str, dict[str, str]] = {}
        for label, values in raw_mapping.items():
            key = f"severity_mapping.{label}"
            mapped = _string_map(name, key, values)
            severity_mapping[str(label)] = dict(mapped)  # spellings checked in __post_init__

        flags: dict[str, bool] = {}
        for key in ("auto_create", "auto_resolve"):
            value = d.get(key, False)
            if not isinstance(value, bool):
                raise _rule_error(name, key, f"must be true or false, got {value!r}")
            flags[key] = value

        window = d.get("suppression_window_minutes", 5)
        if isinstance(window, bool) or not isinstance(window, int):
            raise _rule_error(
                name, "suppression_window_minutes", f"must be an integer, got {window!r}"
            )

        on_refire = d.get("on_refire", "new_incident")
        if not isinstance(on_refire, str):
            raise _rule_error(name, "on_refire", f"must be a string, got {on_refire!r}")
        reopen_within = d.get("reopen_within_minutes", DEFAULT_REOPEN_WITHIN_MINUTES)
        if isinstance(reopen_within, bool) or not isinstance(reopen_within, int):
            raise _rule_error(
                name, "reopen_within_minutes", f"must be an integer, got {reopen_within!r}"
            )

        return cls(
            name=name,
            source=source.strip().lower(),
            name_regex=name_regex,
            label_matchers=labels,
            service=service.strip() if service else None,
            severity_mapping=severity_mapping,
            auto_create=flags["auto_create"],
            auto_resolve=flags["auto_resolve"],
            suppression_window_minutes=window,
            on_refire=on_refire.strip().lower(),
            reopen_within_minutes=reopen_within,
        )

    def matches(self, alert: ParsedAlert) -> bool:
        """True when the alert satisfies every condition of this rule."""
        if self.source != "any" and self.source != alert.source:
            return False
        if self._pattern is not None and self._pattern.fullmatch(alert.name) is None:
            return False
        return all(alert.labels.get(key) == value for key, value in self.label_matchers.items())


def _string_map(rule: str, key: str, value: Any) -> dict[str, str]:
    """A config mapping of scalars as ``dict[str, str]`` (YAML may give ints for values)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _rule_error(rule, key, "must be a mapping")
    result: dict[str, str] = {}
    for item_key, item in value.items():
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise _rule_error(rule, f"{key}.{item_key}", f"must be a string, got {item!r}")
        result[str(item_key)] = str(item)
    return result


def match_rule(rules: Sequence[AlertRuleSpec], alert: ParsedAlert) -> AlertRuleSpec | None:
    """The first rule (in configuration order) that matches ``alert``, else ``None``."""
    for rule in rules:
        if rule.matches(alert):
            return rule
    return None


def resolve_severity(rule: AlertRuleSpec | None, alert: ParsedAlert) -> str:
    """The alert's IMAS severity.

    The rule's ``severity_mapping`` wins when one of its labels has a mapped value (labels
    tried in mapping order); otherwise ``default_severity(alert.severity_label)``.
    """
    if rule is not None:
        for label, values in rule.severity_mapping.items():
            value = alert.labels.get(label)
            if value is None and label == "severity":
                value = alert.severity_label
            if value is not None:
                severity = values.get(value.strip().lower())
                if severity is not None:
                    return severity
    return default_severity(alert.severity_label)


def resolve_service(rule: AlertRuleSpec | None, alert: ParsedAlert) -> str | None:
    """The service name the alert is about: the rule's ``service``, else the alert's hint.

    The result is a name to look up, not a guarantee that such a service exists.
    """
    if rule is not None and rule.service:
        return rule.service
    return alert.service_hint


def incident_key(alert: ParsedAlert) -> str:
    """The key under which alerts share one incident ("one incident per alert group").

    ``"<source>:group:<group_key>"`` when the sender groups alerts (Alertmanager and
    Grafana ``groupKey``, a custom ``group_key``): every alert of one notification group,
    firing now or later while the incident is open, joins the same incident. Otherwise
    ``"<source>:fp:<fingerprint>"``: one incident per alert. The source prefix keeps
    different tools from ever sharing an incident by accident. The key can be long (a
    ``groupKey`` embeds label matchers); hash it if a column needs a bounded size.
    """
    if alert.group_key:
        return f"{alert.source}:group:{alert.group_key}"
    return f"{alert.source}:fp:{alert.fingerprint}"
