"""Configuration as code: ``imas config validate|apply|export``.

The whole file is validated before anything is written; errors name the file, the line
and the key. ``${VAR}`` references are expanded from the environment (secrets stay out of
the file). Apply is an idempotent upsert by name: applying the same file twice changes
nothing; things absent from the file are left as they are (no implicit deletion).

Every apply is audited (``storage.audit``): one ``config.apply`` row with the counts per
kind, and one ``provider.create``/``provider.update`` row per provider changed, naming the
changed fields only (provider configuration holds secrets; values are never recorded).

Provider targets (webhook URLs, endpoints, servers, the SMTP host) are checked by the
address guard (``providers.guard``) at validate and again at apply: syntax, IP literals
and ``localhost`` names, with ``IMAS_ALLOW_PRIVATE_WEBHOOK_TARGETS`` and the provider's own
``allow_private_targets`` / ``allowed_hosts``. Names are not resolved here (the file is
often validated where production DNS is not, and an answer now proves nothing about the
answer at send time): the guard resolves and checks them at every call.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.access import PERMISSIONS_KEY, Action
from bot.domain.enums import AccessRole, severity_value
from bot.domain.errors import ConfigError, InputError
from bot.domain.text import control_character
from bot.flows.escalation import PolicySpec
from bot.oncall import ScheduleSpec
from bot.runtime import Runtime
from providers.guard import AddressPolicy
from providers.registry import provider_class, validate_provider_config
from storage import audit, catalog
from storage.models import (
    AlertRule,
    ImpactScope,
    NotificationProviderRow,
    Schedule,
    Service,
    Team,
)

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _single_line(value: str) -> str:
    code = control_character(value)
    if code is not None:
        raise ValueError(f"must not contain control characters or line breaks (found {code})")
    return value


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_single_line)]
Line = Annotated[str, AfterValidator(_single_line)]  # e-mail addresses, people: header-bound


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TeamConfig(_Model):
    name: Name
    slack_channel_id: str | None = None
    email: Line | None = None
    current_on_call: Line | None = None
    members: list[Line] = Field(default_factory=list)
    escalation_timeout_minutes: int = Field(15, ge=1, le=10080)
    escalation_levels: list[dict[str, Any]] = Field(default_factory=list)
    schedule: str | None = None  # the team's on-call schedule (schedules[].name)
    # escalation_policies[].name, or {SEV1_CRITICAL: name, default: name}
    escalation_policy: str | dict[str, str] | None = None


class ServiceConfig(_Model):
    name: Name
    owner_team: str | None = None
    criticality: Literal["TIER_1_CRITICAL", "TIER_2", "TIER_3"] = "TIER_2"
    runbook_url: str | None = None
    repository_url: str | None = None
    monitoring_url: str | None = None
    is_active: bool = True


class ScopeConfig(_Model):
    name: Name
    description: str = ""
    notify_emails: list[Line] = Field(default_factory=list)
    slack_channel_id: str | None = None


class FiltersConfig(_Model):
    min_severity: str | None = None
    events: list[str] | None = None
    services: list[str] | None = None
    teams: list[str] | None = None

    @field_validator("min_severity")
    @classmethod
    def _severity(cls, value: str | None) -> str | None:
        return None if value is None else severity_value(value)


class ProviderEntry(_Model):
    name: Name
    type: str
    is_active: bool = True
    config: dict[str, Any] = Field(default_factory=dict)
    filters: FiltersConfig = Field(default_factory=FiltersConfig)


class WarRoomConfig(_Model):
    severities: list[str] = Field(default_factory=lambda: ["SEV1_CRITICAL", "SEV2_HIGH"])
    archive_after_hours: float = Field(24, ge=0)

    @field_validator("severities")
    @classmethod
    def _severities(cls, value: list[str]) -> list[str]:
        return [severity_value(v) for v in value]


class RemindersConfig(_Model):
    """Minutes between status-update reminders in the war room, per severity (0 = none)."""

    SEV1_CRITICAL: int = Field(30, ge=0)
    SEV2_HIGH: int = Field(60, ge=0)
    SEV3_MEDIUM: int = Field(0, ge=0)
    SEV4_LOW: int = Field(0, ge=0)


class PermissionsConfig(_Model):
    """Who may do what (``bot.access``). ``people`` maps a Slack user id or an e-mail to an
    access role; ``actions`` sets the minimum role of an action (defaults: ``view`` and
    ``join`` viewer, ``reopen`` manager, everything else responder)."""

    slack_default_role: AccessRole = AccessRole.RESPONDER
    people: dict[str, AccessRole] = Field(default_factory=dict)
    actions: dict[Action, AccessRole] = Field(default_factory=dict)


class ScheduleConfig(ScheduleSpec):
    """An on-call schedule (``bot.oncall``): its layers, and optionally its team."""

    name: str = Field(min_length=1, max_length=200)
    team: str | None = None


class ConfigDocument(_Model):
    teams: list[TeamConfig] = Field(default_factory=list)
    services: list[ServiceConfig] = Field(default_factory=list)
    impact_scopes: list[ScopeConfig] = Field(default_factory=list)
    providers: list[ProviderEntry] = Field(default_factory=list)
    war_room: WarRoomConfig | None = None
    reminders: RemindersConfig | None = None
    permissions: PermissionsConfig | None = None
    alert_rules: list[dict[str, Any]] = Field(default_factory=list)
    schedules: list[ScheduleConfig] = Field(default_factory=list)
    escalation_policies: list[PolicySpec] = Field(default_factory=list)
    # file:line of a key path, when parsed from text (apply reports with it too)
    _where: Callable[[tuple[Any, ...]], str] | None = PrivateAttr(default=None)


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    # {kind: {"created": n, "updated": n, "removed": n}} for the kinds that changed.
    # Apply never removes anything (no implicit deletion): "removed" stays 0.
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)

    def summary(self) -> str:
        lines = [f"created {item}" for item in self.created] + [
            f"updated {item}" for item in self.updated
        ]
        lines.append(
            f"{len(self.created)} created, {len(self.updated)} updated, {self.unchanged} unchanged"
        )
        return "\n".join(lines)


# -- loading with line numbers ---------------------------------------------------------


def _line_index(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*path, key)] = key_node.start_mark.line + 1
            _line_index(value_node, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for index, child in enumerate(node.value):
            _line_index(child, (*path, index), out)


def _expand(
    value: Any,
    env: Mapping[str, str],
    path: tuple[Any, ...],
    missing: list[tuple[tuple[Any, ...], str]],
) -> Any:
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                missing.append((path, name))
                return ""
            return env[name]

        return ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, env, (*path, k), missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, (*path, i), missing) for i, v in enumerate(value)]
    return value


def load(path: Path, env: Mapping[str, str], *, allow_private: bool = False) -> ConfigDocument:
    """Parse and validate a whole configuration file. Raises ConfigError listing every
    problem as ``file:line: key: message``. ``allow_private``: the value of
    ``IMAS_ALLOW_PRIVATE_WEBHOOK_TARGETS`` (provider targets on private addresses)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse(text, env, name=str(path), allow_private=allow_private)


def target_problems(
    document: ConfigDocument,
    *,
    allow_private: bool,
    where: Callable[[tuple[Any, ...]], str] | None = None,
) -> list[str]:
    """``file:line: providers[i].config.<key>: refused: ...`` for every provider target the
    address guard refuses without DNS (see the module docstring)."""
    policy = AddressPolicy(allow_private=allow_private)
    problems: list[str] = []
    for index, provider in enumerate(document.providers):
        if not (provider.is_active or provider.config):
            continue
        try:
            model = validate_provider_config(provider.type, provider.name, provider.config)
        except InputError:
            continue  # reported by parse()
        for key, refusal in provider_class(provider.type).refused_targets(model, policy):
            loc = ("providers", index, "config", key)
            prefix = f"{where(loc)}: " if where else ""
            problems.append(
                f"{prefix}providers[{index}].config.{key}: provider {provider.name!r}: "
                f"{refusal.describe()}"
            )
    return problems


def _names(raw: Mapping[str, Any], section: str) -> list[str]:
    items = raw.get(section)
    if not isinstance(items, list):
        return []
    return [i["name"] for i in items if isinstance(i, dict) and isinstance(i.get("name"), str)]


def _unknown(kind: str, value: str, known: list[str], section: str) -> str:
    close = difflib.get_close_matches(value, known, n=1, cutoff=0.6)
    if not close:  # a difference of case only is the commonest slip
        close = [k for k in known if k.lower() == value.lower()][:1]
    hint = f"did you mean {close[0]!r}?" if close else f"define it under {section}"
    return f"unknown {kind} {value!r}: {hint}"


def reference_problems(raw: Mapping[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """``(location, message)`` for every name the file refers to but does not define:
    a service's ``owner_team``, a provider filter's ``services``/``teams``, an alert
    rule's ``service``. Works on the raw mapping, so it runs in the same pass as schema
    validation (entries of the wrong shape are the schema's to report). A name must be
    defined in the same file, as for ``owner_team``."""
    teams, services = _names(raw, "teams"), _names(raw, "services")
    problems: list[tuple[tuple[Any, ...], str]] = []

    def check(loc: tuple[Any, ...], value: Any, kind: str, known: list[str], section: str) -> None:
        if isinstance(value, str) and value and value not in known:
            problems.append((loc, _unknown(kind, value, known, section)))

    for index, service in enumerate(raw.get("services") or []):
        if isinstance(service, dict):
            loc = ("services", index, "owner_team")
            check(loc, service.get("owner_team"), "team", teams, "teams")
    for index, provider in enumerate(raw.get("providers") or []):
        filters = provider.get("filters") if isinstance(provider, dict) else None
        if not isinstance(filters, dict):
            continue
        for key, kind, known in (("services", "service", services), ("teams", "team", teams)):
            values = filters.get(key)
            for position, value in enumerate(values if isinstance(values, list) else []):
                check(("providers", index, "filters", key, position), value, kind, known, key)
    for index, rule in enumerate(raw.get("alert_rules") or []):
        if isinstance(rule, dict):
            check(
                ("alert_rules", index, "service"),
                rule.get("service"),
                "service",
                services,
                "services",
            )
    return problems


def parse(
    text: str, env: Mapping[str, str], *, name: str = "<config>", allow_private: bool = False
) -> ConfigDocument:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        location = f"{name}:{mark.line + 1}" if mark else name
        raise ConfigError(f"{location}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if raw is None:
        raw = {}
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _line_index(node, (), lines)
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}:1: the file must be a mapping with teams, services, ...")

    def where(loc: tuple[Any, ...]) -> str:
        for cut in range(len(loc), -1, -1):
            if loc[:cut] in lines:
                return f"{name}:{lines[loc[:cut]]}"
        return name

    def dotted(loc: tuple[Any, ...]) -> str:
        return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")

    problems: list[str] = []
    missing: list[tuple[tuple[Any, ...], str]] = []
    expanded = _expand(raw, env, (), missing)
    for loc, var in missing:
        problems.append(
            f"{where(loc)}: {dotted(loc)}: environment variable {var} is not set "
            "(neither in the environment nor in .env)"
        )
    references = [
        f"{where(loc)}: {dotted(loc)}: {message}" for loc, message in reference_problems(expanded)
    ]
    try:
        document = ConfigDocument.model_validate(expanded)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            problems.append(f"{where(loc)}: {dotted(loc)}: {err['msg']}")
        problems += references  # one pass: schema and reference errors together
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems)) from None
    problems += references

    named: list[tuple[str, list[Any]]] = [
        ("teams", list(document.teams)),
        ("services", list(document.services)),
        ("impact_scopes", list(document.impact_scopes)),
        ("providers", list(document.providers)),
        ("schedules", list(document.schedules)),
        ("escalation_policies", list(document.escalation_policies)),
    ]
    for kind, items in named:
        seen: set[str] = set()
        for index, item in enumerate(items):
            if item.name in seen:
                problems.append(
                    f"{where((kind, index, 'name'))}: {kind}[{index}].name: duplicate name {item.name!r}"
                )
            seen.add(item.name)
    for index, provider in enumerate(document.providers):
        loc = ("providers", index)
        try:
            provider_class(provider.type)
            if provider.is_active or provider.config:
                validate_provider_config(provider.type, provider.name, provider.config)
        except InputError as exc:
            problems.append(f"{where((*loc, 'config'))}: providers[{index}]: {exc.message}")
    if document.alert_rules:
        from bot.alert_rules import AlertRuleSpec

        for index, rule in enumerate(document.alert_rules):
            try:
                AlertRuleSpec.from_config(rule)
            except InputError as exc:
                problems.append(
                    f"{where(('alert_rules', index))}: alert_rules[{index}]: {exc.message}"
                )
    problems += schedule_problems(document, where)
    problems += policy_problems(document, where)
    problems += target_problems(document, allow_private=allow_private, where=where)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    document._where = where
    return document


# -- apply -----------------------------------------------------------------------------


def _assign(obj: Any, values: dict[str, Any]) -> list[str]:
    """Set ``values`` on ``obj``; the names of the fields that changed."""
    changed = []
    for key, value in values.items():
        if getattr(obj, key) != value:
            setattr(obj, key, value)
            changed.append(key)
    return changed


def _set(obj: Any, values: dict[str, Any]) -> bool:
    return bool(_assign(obj, values))


def _config_keys(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """``config.<key>`` for each provider configuration key added, removed or changed."""
    keys = set(before) | set(after)
    return [
        f"config.{key}"
        for key in sorted(keys, key=str)
        if key not in before or key not in after or before[key] != after[key]
    ]


def apply(
    session: Session,
    rt: Runtime,
    document: ConfigDocument,
    *,
    actor: audit.AuditActor = audit.SYSTEM,
    source: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> ApplyReport:
    """Upsert everything in ``document`` in the caller's transaction, and audit it as
    ``actor`` (``source``: the file applied, the audit target). ``progress`` is told the
    section being applied (``imas config apply`` shows it).

    Provider targets are checked again, with this runtime's
    ``IMAS_ALLOW_PRIVATE_WEBHOOK_TARGETS``: ConfigError before anything is written."""
    refused = target_problems(
        document,
        allow_private=rt.settings.allow_private_webhook_targets,
        where=document._where,
    )
    if refused:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(refused))
    report = ApplyReport()

    def section(name: str, items: Sequence[Any]) -> None:
        if progress is not None and items:
            progress(f"{name} ({len(items)})")

    def track(kind: str, label: str, created: bool, changed: bool) -> None:
        if created or changed:
            counts = report.counts.setdefault(kind, {"created": 0, "updated": 0, "removed": 0})
            counts["created" if created else "updated"] += 1
        if created:
            report.created.append(label)
        elif changed:
            report.updated.append(label)
        else:
            report.unchanged += 1

    section("teams", document.teams)
    for cfg in document.teams:
        team = catalog.get_team(session, name=cfg.name)
        created = team is None
        if team is None:
            team = Team(name=cfg.name, escalation_levels=[])
            session.add(team)
        on_call = (
            catalog.ensure_person(session, ref=cfg.current_on_call) if cfg.current_on_call else None
        )
        changed = _set(
            team,
            {
                "slack_channel_id": cfg.slack_channel_id,
                "email": cfg.email,
                "current_on_call_id": on_call.id if on_call else None,
                "escalation_timeout_minutes": cfg.escalation_timeout_minutes,
                "escalation_levels": cfg.escalation_levels,
            },
        )
        members = [catalog.ensure_person(session, ref=ref) for ref in cfg.members]
        if [m.id for m in team.members] != [m.id for m in members]:
            team.members = members
            changed = True
        session.flush()
        track("team", f"team {cfg.name}", created, changed)

    apply_schedules(session, document, track)
    apply_policies(session, document, track)

    section("services", document.services)
    for svc in document.services:
        service = catalog.get_service(session, ref=svc.name)
        created = service is None
        if service is None:
            service = Service(name=svc.name)
            session.add(service)
        owner = catalog.get_team(session, name=svc.owner_team) if svc.owner_team else None
        changed = _set(
            service,
            {
                "owner_team_id": owner.id if owner else None,
                "criticality": svc.criticality,
                "runbook_url": svc.runbook_url,
                "repository_url": svc.repository_url,
                "monitoring_url": svc.monitoring_url,
                "is_active": svc.is_active,
            },
        )
        session.flush()
        track("service", f"service {svc.name}", created, changed)

    section("impact_scopes", document.impact_scopes)
    for sc in document.impact_scopes:
        scope = catalog.get_scope(session, name=sc.name)
        created = scope is None
        if scope is None:
            scope = ImpactScope(name=sc.name)
            session.add(scope)
        changed = _set(
            scope,
            {
                "description": sc.description,
                "notify_emails": sc.notify_emails,
                "slack_channel_id": sc.slack_channel_id,
            },
        )
        session.flush()
        track("impact_scope", f"impact scope {sc.name}", created, changed)

    section("providers", document.providers)
    for pc in document.providers:
        row = catalog.get_provider(session, name=pc.name)
        created = row is None
        type_name = provider_class(pc.type).type
        filters = pc.filters.model_dump(exclude_none=True)
        if row is None:
            row = NotificationProviderRow(
                name=pc.name,
                type=type_name,
                is_active=pc.is_active,
                config_encrypted=rt.box.encrypt_json(pc.config),
                filters=filters,
            )
            session.add(row)
            fields = ["type", "is_active", "filters", *_config_keys({}, pc.config)]
        else:
            fields = _assign(
                row, {"type": type_name, "is_active": pc.is_active, "filters": filters}
            )
            config_keys = _config_keys(rt.box.decrypt_json(row.config_encrypted), pc.config)
            if config_keys:
                row.config_encrypted = rt.box.encrypt_json(pc.config)
                fields += config_keys
        session.flush()
        track("provider", f"provider {pc.name}", created, bool(fields))
        if fields:
            # Field names only: the values of a provider's configuration are secrets.
            audit.record(
                session,
                **actor.fields(),
                action="provider.create" if created else "provider.update",
                target_type="provider",
                target=pc.name,
                changes=dict.fromkeys(fields),
            )

    if document.war_room is not None:
        changed = catalog.set_app_setting(
            session, key="war_room", value=document.war_room.model_dump()
        )
        track("war_room", "war_room settings", False, changed)
    if document.reminders is not None:
        changed = catalog.set_app_setting(
            session, key="reminders", value=document.reminders.model_dump()
        )
        track("reminders", "reminder settings", False, changed)

    if document.permissions is not None:
        changed = catalog.set_app_setting(
            session, key=PERMISSIONS_KEY, value=document.permissions.model_dump(mode="json")
        )
        track("permissions", "permissions", False, changed)

    section("alert_rules", document.alert_rules)
    for position, rule in enumerate(document.alert_rules):
        name = str(rule.get("name"))
        existing = session.query(AlertRule).filter(AlertRule.name == name).one_or_none()
        if existing is None:
            session.add(AlertRule(name=name, position=position, spec=rule))
            track("alert_rule", f"alert rule {name}", True, True)
        else:
            changed = _set(existing, {"position": position, "spec": rule})
            track("alert_rule", f"alert rule {name}", False, changed)
    summary = report.summary().splitlines()[-1]
    audit.record(
        session,
        **actor.fields(),
        action="config.apply",
        target_type="config",
        target=source,
        changes=report.counts,
        detail=summary,
    )
    session.flush()
    return report


# -- export ----------------------------------------------------------------------------


def export(session: Session, rt: Runtime) -> str:
    """The current configuration as YAML. Provider secrets are written as ``${VAR}``
    references (``IMAS_<PROVIDER>_<KEY>``), never as values."""
    doc: dict[str, Any] = {"teams": [], "services": [], "impact_scopes": [], "providers": []}
    for team in catalog.list_teams(session):
        doc["teams"].append(
            _clean(
                {
                    "name": team.name,
                    "slack_channel_id": team.slack_channel_id,
                    "email": team.email,
                    "current_on_call": _ref(team.current_on_call),
                    "members": [_ref(m) for m in team.members],
                    "escalation_timeout_minutes": team.escalation_timeout_minutes,
                    "escalation_levels": team.escalation_levels or None,
                }
            )
        )
    for service in catalog.list_services(session):
        doc["services"].append(
            _clean(
                {
                    "name": service.name,
                    "owner_team": service.owner_team.name if service.owner_team else None,
                    "criticality": service.criticality,
                    "runbook_url": service.runbook_url,
                    "repository_url": service.repository_url,
                    "monitoring_url": service.monitoring_url,
                    "is_active": service.is_active,
                }
            )
        )
    for scope in catalog.list_scopes(session):
        doc["impact_scopes"].append(
            _clean(
                {
                    "name": scope.name,
                    "description": scope.description or None,
                    "notify_emails": scope.notify_emails or None,
                    "slack_channel_id": scope.slack_channel_id,
                }
            )
        )
    for row in catalog.list_providers(session):
        config = rt.box.decrypt_json(row.config_encrypted)
        secrets = provider_class(row.type).secret_keys
        slug = re.sub(r"[^A-Z0-9]+", "_", row.name.upper()).strip("_")
        for key in list(config):
            if key in secrets or key == "headers":
                config[key] = f"${{IMAS_{slug}_{key.upper()}}}"
        doc["providers"].append(
            _clean(
                {
                    "name": row.name,
                    "type": row.type,
                    "is_active": row.is_active,
                    "config": config,
                    "filters": row.filters or None,
                }
            )
        )
    for key in ("war_room", "reminders", PERMISSIONS_KEY):
        value = catalog.get_app_setting(session, key=key)
        if value:
            doc[key] = value
    rules = session.query(AlertRule).order_by(AlertRule.position).all()
    if rules:
        doc["alert_rules"] = [rule.spec for rule in rules]
    schedules = export_schedules(session)
    if schedules:
        doc["schedules"] = schedules
    export_policies(session, doc)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def _ref(person: Any) -> str | None:
    if person is None:
        return None
    return str(person.email or person.slack_user_id)


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# -- on-call schedules (bot.oncall) ----------------------------------------------------


def schedule_problems(
    document: ConfigDocument, where: Callable[[tuple[Any, ...]], str]
) -> list[str]:
    """Team and schedule references: a schedule's team exists, a team's schedule exists,
    and a team has one schedule."""
    problems: list[str] = []
    team_names = {t.name for t in document.teams}
    names = {s.name for s in document.schedules}
    owner: dict[str, str] = {}
    for index, sched in enumerate(document.schedules):
        if sched.team is None:
            continue
        if sched.team not in team_names:
            problems.append(
                f"{where(('schedules', index, 'team'))}: schedules[{index}].team: "
                f"unknown team {sched.team!r} (define it under teams)"
            )
        elif sched.team in owner:
            problems.append(
                f"{where(('schedules', index, 'team'))}: schedules[{index}].team: team "
                f"{sched.team!r} already has schedule {owner[sched.team]!r} (one per team)"
            )
        else:
            owner[sched.team] = sched.name
    for index, team in enumerate(document.teams):
        if team.schedule is None:
            continue
        loc = ("teams", index, "schedule")
        if team.schedule not in names:
            problems.append(
                f"{where(loc)}: teams[{index}].schedule: unknown schedule {team.schedule!r} "
                "(define it under schedules)"
            )
        elif owner.get(team.name, team.schedule) != team.schedule:
            problems.append(
                f"{where(loc)}: teams[{index}].schedule: schedule {owner[team.name]!r} already "
                f"names this team (one per team)"
            )
        else:
            other = next(s for s in document.schedules if s.name == team.schedule)
            if other.team not in (None, team.name):
                problems.append(
                    f"{where(loc)}: teams[{index}].schedule: schedule {team.schedule!r} "
                    f"belongs to team {other.team!r}"
                )
            owner[team.name] = team.schedule
    return problems


def apply_schedules(
    session: Session, document: ConfigDocument, track: Callable[[str, str, bool, bool], None]
) -> None:
    """Upsert ``schedules:`` by name and link each to its team (``schedules[].team`` or
    ``teams[].schedule``). A schedule row of the same team under another name (e.g. one
    created by an override) loses the link; its overrides stay with it."""
    team_of = {s.name: s.team for s in document.schedules}
    for team_cfg in document.teams:
        if team_cfg.schedule:
            team_of[team_cfg.schedule] = team_cfg.name
    for sched in document.schedules:
        team_name = team_of[sched.name]
        team = catalog.get_team(session, name=team_name) if team_name else None
        spec = sched.model_dump(mode="json", exclude={"name", "team"})
        for layer in sched.layers:
            for ref in layer.members:
                catalog.ensure_person(session, ref=ref)
        if team is not None:
            for other in session.scalars(
                select(Schedule).where(Schedule.team_id == team.id, Schedule.name != sched.name)
            ):
                other.team_id = None
            session.flush()
        row = session.scalar(select(Schedule).where(Schedule.name == sched.name))
        created = row is None
        if row is None:
            row = Schedule(name=sched.name, spec=spec, team_id=team.id if team else None)
            session.add(row)
            changed = True
        else:
            changed = _set(row, {"spec": spec, "team_id": team.id if team else None})
        session.flush()
        track("schedule", f"schedule {sched.name}", created, changed)


def export_schedules(session: Session) -> list[dict[str, Any]]:
    return [
        _clean({"name": row.name, "team": row.team.name if row.team else None, **row.spec})
        for row in session.scalars(select(Schedule).order_by(Schedule.id))
    ]


# -- escalation policies (bot.flows.escalation) ------------------------------------------


def policy_problems(document: ConfigDocument, where: Callable[[tuple[Any, ...]], str]) -> list[str]:
    """Teams name existing policies with valid severities; ``schedule:`` targets name
    schedules of the file."""
    from bot.flows import escalation

    problems: list[str] = []
    policies = {p.name for p in document.escalation_policies}
    schedules = {s.name for s in document.schedules}
    for index, team in enumerate(document.teams):
        loc = ("teams", index, "escalation_policy")
        mapping = escalation.team_policy_names(team.escalation_policy)
        problem = escalation.severity_keys_problem(mapping)
        if problem:
            problems.append(f"{where(loc)}: teams[{index}].escalation_policy: {problem}")
        for name in mapping.values():
            if name not in policies:
                problems.append(
                    f"{where(loc)}: teams[{index}].escalation_policy: unknown policy {name!r} "
                    "(define it under escalation_policies)"
                )
    for index, policy in enumerate(document.escalation_policies):
        for number, step in enumerate(policy.steps):
            for target in step.targets:
                if not target.startswith("schedule:"):
                    continue
                wanted = target[len("schedule:") :].strip()
                if wanted not in schedules:
                    step_loc = ("escalation_policies", index, "steps", number, "targets")
                    problems.append(
                        f"{where(step_loc)}: escalation_policies[{index}].steps[{number}]."
                        f"targets: unknown schedule {wanted!r} (define it under schedules)"
                    )
    return problems


def apply_policies(
    session: Session, document: ConfigDocument, track: Callable[[str, str, bool, bool], None]
) -> None:
    """Policies upserted by name; each team of the file gets the file's choice (none
    removes it). Stored as one app setting."""
    from bot.flows import escalation

    if not document.escalation_policies and not any(t.escalation_policy for t in document.teams):
        return
    stored = catalog.get_app_setting(session, key=escalation.SETTING_KEY)
    policies = dict(stored.get("policies") or {})
    teams = dict(stored.get("teams") or {})
    for policy in document.escalation_policies:
        policies[policy.name] = policy.model_dump(mode="json")
    for team in document.teams:
        teams[team.name] = escalation.team_policy_names(team.escalation_policy)
    value = {"policies": policies, "teams": {k: v for k, v in teams.items() if v}}
    changed = catalog.set_app_setting(session, key=escalation.SETTING_KEY, value=value)
    track("escalation_policies", "escalation policies", False, changed)


def export_policies(session: Session, doc: dict[str, Any]) -> None:
    from bot.flows import escalation

    stored = catalog.get_app_setting(session, key=escalation.SETTING_KEY)
    if stored.get("policies"):
        doc["escalation_policies"] = list(stored["policies"].values())
    for team in doc.get("teams", []):
        mapping = (stored.get("teams") or {}).get(team["name"])
        if mapping:
            team["escalation_policy"] = (
                mapping["default"] if list(mapping) == ["default"] else mapping
            )
