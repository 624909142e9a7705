"""How severities, statuses and roles are spelled, once, with the one parser every door
(Slack, REST, the CLI, the dashboard, alert rules, the config file) uses.

Each parser accepts the canonical value and its documented aliases, case-insensitively,
and raises ``InputError`` listing the accepted spellings otherwise.
"""

from __future__ import annotations

from enum import StrEnum

from bot.domain.errors import InputError


class Severity(StrEnum):
    SEV1_CRITICAL = "SEV1_CRITICAL"
    SEV2_HIGH = "SEV2_HIGH"
    SEV3_MEDIUM = "SEV3_MEDIUM"
    SEV4_LOW = "SEV4_LOW"

    @property
    def short(self) -> str:
        """``SEV1`` … ``SEV4``."""
        return self.value.split("_")[0]


class Status(StrEnum):
    TRIGGERED = "TRIGGERED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    MITIGATED = "MITIGATED"
    RESOLVED = "RESOLVED"


class AccessRole(StrEnum):
    """What a person or token may do in IMAS, lowest first: each includes the ones before."""

    VIEWER = "viewer"
    RESPONDER = "responder"
    MANAGER = "manager"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(AccessRole).index(self)

    def at_least(self, other: AccessRole) -> bool:
        return self.rank >= other.rank


class IncidentRole(StrEnum):
    """The response roles a person can hold on one incident."""

    LEAD = "lead"
    COMMUNICATIONS = "communications"
    SCRIBE = "scribe"


SEVERITIES: tuple[str, ...] = tuple(s.value for s in Severity)
STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
OPEN_STATUSES: tuple[str, ...] = (Status.TRIGGERED, Status.ACKNOWLEDGED, Status.MITIGATED)
ACCESS_ROLES: tuple[str, ...] = tuple(r.value for r in AccessRole)
INCIDENT_ROLES: tuple[str, ...] = tuple(r.value for r in IncidentRole)

ROLE_HELP = {
    IncidentRole.LEAD: "You lead the response: decide, delegate, and keep the status current.",
    IncidentRole.COMMUNICATIONS: (
        "You keep stakeholders informed: post status updates (/incident update)."
    ),
    IncidentRole.SCRIBE: (
        "You keep the timeline: pin key messages with 📌 and add notes (/incident note)."
    ),
}

_SEVERITY_NAMES = {"CRITICAL": 1, "HIGH": 2, "MEDIUM": 3, "LOW": 4}
SEVERITY_ALIASES: dict[str, Severity] = {}
for _severity in Severity:
    _number = int(_severity.short[3:])
    _name = _severity.value.split("_", 1)[1]
    for _alias in (_severity.value, _severity.short, _name, f"P{_number}", str(_number)):
        SEVERITY_ALIASES[_alias.upper()] = _severity

STATUS_ALIASES: dict[str, Status] = {
    **{s.value: s for s in Status},
    "ACK": Status.ACKNOWLEDGED,
    "ACKED": Status.ACKNOWLEDGED,
    "ACKNOWLEDGE": Status.ACKNOWLEDGED,
    "MITIGATE": Status.MITIGATED,
    "RESOLVE": Status.RESOLVED,
    "OPEN": Status.TRIGGERED,
    "REOPEN": Status.TRIGGERED,
    "REOPENED": Status.TRIGGERED,
}

ROLE_ALIASES: dict[str, IncidentRole] = {
    **{r.value.upper(): r for r in IncidentRole},
    "COMMS": IncidentRole.COMMUNICATIONS,
    "IC": IncidentRole.LEAD,
    "COMMANDER": IncidentRole.LEAD,
}


def _key(text: object) -> str:
    return str(text or "").strip().upper().replace("-", "_").replace(" ", "_")


def parse_severity(text: object, *, field: str = "severity") -> Severity:
    """``SEV1``, ``sev1_critical``, ``critical``, ``P1``, ``1`` → ``Severity.SEV1_CRITICAL``."""
    found = SEVERITY_ALIASES.get(_key(text))
    if found is None:
        raise InputError(
            f"Unknown severity {str(text)!r}: use one of {', '.join(SEVERITIES)} "
            "(or SEV1…SEV4, critical/high/medium/low, P1…P4).",
            field=field,
        )
    return found


def severity_value(text: object) -> str:
    """``parse_severity`` for pydantic validators and configuration files: the canonical
    value, or ``ValueError`` carrying the parser's message (aliases listed)."""
    try:
        return parse_severity(text).value
    except InputError as exc:
        raise ValueError(exc.message) from None


def parse_status(text: object, *, field: str = "status") -> Status:
    found = STATUS_ALIASES.get(_key(text))
    if found is None:
        raise InputError(
            f"Unknown status {str(text)!r}: use one of {', '.join(STATUSES)} "
            "(or ack, mitigate, resolve, reopen).",
            field=field,
        )
    return found


def parse_incident_role(text: object, *, field: str = "role") -> IncidentRole:
    found = ROLE_ALIASES.get(_key(text))
    if found is None:
        raise InputError(
            f"Unknown role {str(text)!r}; roles: {', '.join(INCIDENT_ROLES)} (or comms, ic).",
            field=field,
        )
    return found


def parse_access_role(text: object, *, field: str = "role") -> AccessRole:
    try:
        return AccessRole(str(text or "").strip().lower())
    except ValueError:
        raise InputError(
            f"Unknown access role {str(text)!r}: use one of {', '.join(ACCESS_ROLES)}.",
            field=field,
        ) from None
