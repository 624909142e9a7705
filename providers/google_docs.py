"""The LID (Lead Incident Document) provider: a Google Doc per incident, kept up to date.

``GoogleDocsLid`` creates the incident's document in Google Drive (a copy of
``GOOGLE_LID_TEMPLATE_ID`` with its ``{{PLACEHOLDERS}}`` filled, or a document laid out
from scratch), shares it, and later keeps IMAS's own parts of it current while humans
write the rest.

Contract (what the outbox relies on):

* Every public method is **idempotent**: calling it again with the same arguments, after
  a success, a failure or a lost response, leaves the document as one successful call
  would. ``create_document`` never makes a second document for one ``idempotency_key``:
  the key is stored in the file's private ``appProperties`` and looked up first.
* Errors are classified, never retried here (``execute(num_retries=0)``):
  ``RetryableProviderError`` for 429, 5xx, Drive's 403 rate-limit reasons, timeouts,
  connection errors, an unreachable/5xx token endpoint and write conflicts that outlast
  three re-reads; ``PermanentProviderError`` for other 4xx and rejected credentials, with
  a ``hint`` naming the service account's e-mail (never its key) when the template or
  folder is not shared with it.
* No database access and no knowledge of the outbox; Google specifics stay in this module.

Living document: IMAS-owned regions.
    A region is the run of paragraphs between a start-marker paragraph and an
    end-marker paragraph, written as visible text::

        ⟦imas:status⟧
        🟠 SEV2_HIGH · TRIGGERED
        Lead: Ada Lovelace <ada@example.com>
        War room: https://...
        Last synced: 2026-01-01 14:30:00 UTC
        ⟦/imas:status⟧

    Regions: ``status`` (heading "IMAS STATUS"), ``timeline`` ("TIMELINE (IMAS)") and
    ``resolution`` ("RESOLUTION (IMAS)"). A paragraph *containing* a marker counts as that
    marker, so text a human types on a marker line is kept. IMAS only ever rewrites the
    paragraphs strictly between a pair of markers, and appends whole sections at the end
    of the document when a region is missing (a template without markers, or markers a
    human deleted). Everything else in the document belongs to humans and is never
    touched. Each timeline line ends with its entry key, ``⟦ev:<key>⟧``; the whole
    document is searched for these tags, so an entry is written once even if a human
    moved its line elsewhere.

    Index-based writes carry ``writeControl.requiredRevisionId`` from the read they were
    computed from: if a human edits the document in between, Google rejects the write and
    IMAS re-reads and recomputes (three attempts, then ``RetryableProviderError``), so a
    concurrent edit can never shift a deletion onto human text.

Transport: ``requests`` through google-auth's ``AuthorizedSession`` (wrapped in the
``httplib2``-shaped object googleapiclient expects), with connect/read timeouts. httplib2
is deliberately not used: when a server closes the connection without answering,
httplib2 silently re-sends the request once, so a lost response to ``files.copy`` would
create a second document before IMAS could look for the first.

Both the API session and the token-endpoint session go through the address guard
(``providers.http.guarded_session``): ``GOOGLE_API_ENDPOINT`` and ``GOOGLE_TOKEN_URI``
are resolved once per call, every address checked, the connection pinned to the checked
address, and no redirect followed (a 3xx is a permanent ``redirect_refused`` error).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import google.auth.exceptions
import google.auth.transport.requests
import httplib2
import requests
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from bot.domain.errors import (
    ConfigError,
    PermanentProviderError,
    ProviderError,
    RetryableProviderError,
)
from providers.base import SEVERITY_EMOJI, CheckResult, IncidentView
from providers.guard import AddressPolicy
from providers.http import guarded_session, parse_retry_after

log = logging.getLogger(__name__)

SCOPES = (
    "https://www.googleapis.com/auth/documents",
    "https://www.googleapis.com/auth/drive",
)
DOC_MIME = "application/vnd.google-apps.document"
APP_KEY = "imasKey"
APP_INCIDENT = "imasIncident"
EMPTY = "—"

PLACEHOLDERS = (
    "INCIDENT_ID",
    "INCIDENT_TITLE",
    "SEVERITY",
    "STATUS",
    "SERVICE_NAME",
    "TEAM_NAME",
    "CREATED_AT",
    "DESCRIPTION",
    "LEAD_NAME",
    "LEAD_EMAIL",
    "WAR_ROOM_URL",
    "RUNBOOK_URL",
    "INCIDENT_URL",
    "ACKNOWLEDGED_AT",
    "RESOLVED_AT",
    "TIME_TO_ACKNOWLEDGE",
    "TIME_TO_RESOLVE",
    "DURATION",
)
# Placeholders whose value changes during the incident: when a template holds them, the
# filled value is wrapped in a named range ``imas.<NAME>`` and rewritten in place on sync.
LIVE_PLACEHOLDERS = (
    "STATUS",
    "SEVERITY",
    "LEAD_NAME",
    "LEAD_EMAIL",
    "WAR_ROOM_URL",
    "ACKNOWLEDGED_AT",
    "RESOLVED_AT",
    "TIME_TO_ACKNOWLEDGE",
    "TIME_TO_RESOLVE",
    "DURATION",
)
RANGE_PREFIX = "imas."
EVENT_RANGE_PREFIX = "imas.ev."
RESOLUTION_RANGE = "imas.resolution"
POSTMORTEM_RANGE = "imas.postmortem"
DEFAULT_HEADINGS: dict[str, tuple[str, ...]] = {
    "timeline": ("TIMELINE",),
    "resolution": ("RESOLUTION",),
    "postmortem": ("POST-MORTEM", "POSTMORTEM", "POST MORTEM"),
}

REGION_HEADINGS = {
    "status": "IMAS STATUS",
    "timeline": "TIMELINE (IMAS)",
    "resolution": "RESOLUTION (IMAS)",
    "postmortem": "POST-MORTEM (IMAS)",  # only when written and the document has no heading
}
# The regions a document gets at creation when it has no place of its own for them.
CREATION_REGIONS = ("status", "timeline", "resolution")
RESOLUTION_PENDING = "Not resolved yet (IMAS writes the resolution summary here)."
LAST_SYNCED = "Last synced: "

_ROLE_RANK = {
    "reader": 0,
    "commenter": 1,
    "writer": 2,
    "fileOrganizer": 3,
    "organizer": 4,
    "owner": 5,
}
# Drive answers 403 (not 429) for these: they clear with time, so retry.
_RETRYABLE_403_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "sharingRateLimitExceeded", "backendError"}
)
_TAG = re.compile(r"⟦ev:([^⟧\s]+)⟧")
_LINE_TIME = re.compile(r"^\s*(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) UTC")
_KEY_OK = re.compile(r"[^\s⟦⟧]+")
_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")
_NUMBERING = re.compile(r"^(?:\d+(?:\.\d+)*[.)]?|[IVXLC]+[.)])\s+")
_CONFLICT_ATTEMPTS = 3


def start_marker(region: str) -> str:
    """The start-marker text of ``region`` (``status``, ``timeline``, ``resolution``)."""
    return f"⟦imas:{region}⟧"


def end_marker(region: str) -> str:
    """The end-marker text of ``region``."""
    return f"⟦/imas:{region}⟧"


class GoogleSettings(Protocol):
    """What the LID provider reads from IMAS's settings object (structural, so this module
    needs nothing from ``bot/``)."""

    @property
    def google_lid_template_id(self) -> str | None: ...
    @property
    def google_drive_folder_id(self) -> str | None: ...
    @property
    def google_drive_domain(self) -> str | None: ...
    @property
    def google_api_endpoint(self) -> str | None: ...
    @property
    def google_token_uri(self) -> str | None: ...
    @property
    def http_connect_timeout(self) -> float: ...
    @property
    def http_read_timeout(self) -> float: ...
    @property
    def allow_private_webhook_targets(self) -> bool: ...
    def google_service_account_info(self) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class LidDocument:
    """The incident's document. ``created`` is False when an earlier attempt made it.

    ``warnings`` lists shares that Google refused for good (e.g. an address without a
    Google account): the document exists and is usable, so they do not fail the step.
    """

    document_id: str
    url: str
    created: bool = True
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class TimelineLine:
    """One timeline entry for the document. ``key`` is unique per entry (e.g. the event id)."""

    key: str
    at: datetime
    type: str
    message: str
    actor: str | None = None


class _RevisionConflict(Exception):
    """The document changed between our read and our write."""


@dataclass(frozen=True)
class _Paragraph:
    start: int
    end: int
    text: str  # including the trailing newline

    @property
    def line(self) -> str:
        return self.text.rstrip("\n")


@dataclass(frozen=True)
class _Named:
    id: str
    name: str
    start: int
    end: int


@dataclass(frozen=True)
class _DocState:
    revision_id: str | None
    paragraphs: tuple[_Paragraph, ...]
    named: tuple[_Named, ...] = ()

    def ranges(self, name: str) -> list[_Named]:
        return sorted((r for r in self.named if r.name == name), key=lambda r: r.start)

    def text_at(self, start: int, end: int) -> str:
        """The body text in ``[start, end)`` (Docs indices)."""
        out = []
        for p in self.paragraphs:
            if p.end <= start or p.start >= end:
                continue
            units = p.text.encode("utf-16-le")
            a, b = max(start, p.start) - p.start, min(end, p.end) - p.start
            out.append(units[a * 2 : b * 2].decode("utf-16-le", errors="replace"))
        return "".join(out)

    def paragraph_at(self, index: int) -> int | None:
        """Position of the paragraph holding ``index``."""
        for i, p in enumerate(self.paragraphs):
            if p.start <= index < p.end:
                return i
        return None

    def heading(self, names: Sequence[str]) -> int | None:
        """Position of the first paragraph reading as one of ``names`` (see ``heading_key``),
        outside IMAS regions."""
        wanted = {heading_key(n) for n in names if n.strip()}
        inside: set[int] = set()
        for region in REGION_HEADINGS:
            bounds = self.region(region)
            if bounds:
                inside.update(range(bounds[0], bounds[1] + 1))
        for i, p in enumerate(self.paragraphs):
            if i not in inside and p.line.strip() and heading_key(p.line) in wanted:
                return i
        return None

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.paragraphs)

    @property
    def is_blank(self) -> bool:
        return not self.text.strip()

    def region(self, name: str) -> tuple[int, int] | None:
        """Paragraph positions (start marker, end marker) of ``name``, or None if missing.

        Pairs the first end marker that has a start marker before it with the nearest such
        start marker, so an orphan marker left by a human edit never widens a region.
        """
        start, end = start_marker(name), end_marker(name)
        last_start: int | None = None
        for i, paragraph in enumerate(self.paragraphs):
            if end in paragraph.text and last_start is not None:
                return last_start, i
            if start in paragraph.text:
                last_start = i
        return None

    def region_lines(self, bounds: tuple[int, int]) -> list[str]:
        return [p.line for p in self.paragraphs[bounds[0] + 1 : bounds[1]]]


def _u16(text: str) -> int:
    """Length in UTF-16 code units, the unit of Google Docs indices."""
    return len(text.encode("utf-16-le")) // 2


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _fmt_time(moment: datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_duration(seconds: float | None) -> str:
    """``1h 02m 05s`` (``—`` for None); whole seconds, as the metrics API rounds them."""
    if seconds is None:
        return EMPTY
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    """``end - start`` in seconds, never negative; None when either is unknown (as in
    ``bot.kpis``)."""
    if start is None or end is None:
        return None
    return max(0.0, (_utc(end) - _utc(start)).total_seconds())


def heading_key(line: str) -> str:
    """A paragraph's text as compared with heading names: trimmed, case-folded, without
    list numbering (``3. ``), a trailing colon or repeated spaces."""
    text = _NUMBERING.sub("", line.strip())
    return " ".join(text.rstrip(":").split()).casefold()


def _clean(text: str | None) -> str:
    """One line of document text: no control characters, no marker brackets."""
    if not text:
        return ""
    for newline in ("\r\n", "\n", "\r", "\u2028", "\u2029"):
        text = text.replace(newline, " ")
    text = "".join(ch for ch in text if ch == "\t" or unicodedata.category(ch) != "Cc")
    return text.replace("⟦", "[").replace("⟧", "]").strip()


def _or_empty(value: str | None) -> str:
    value = _clean(value)
    return value or EMPTY


def _app_key(idempotency_key: str) -> str:
    """``idempotency_key`` as an appProperties value (key + value must fit 124 bytes)."""
    if len(idempotency_key.encode()) <= 100:
        return idempotency_key
    return "sha256:" + hashlib.sha256(idempotency_key.encode()).hexdigest()


def _q_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _insert(index: int, text: str) -> dict[str, Any]:
    return {"insertText": {"location": {"index": index}, "text": text}}


def _delete(start: int, end: int) -> dict[str, Any]:
    return {"deleteContentRange": {"range": {"startIndex": start, "endIndex": end}}}


def _style(start: int, end: int, named_style: str) -> dict[str, Any]:
    return {
        "updateParagraphStyle": {
            "range": {"startIndex": start, "endIndex": end},
            "paragraphStyle": {"namedStyleType": named_style},
            "fields": "namedStyleType",
        }
    }


def _layout(
    index: int, lines: Sequence[tuple[str, str | None]]
) -> tuple[str, list[dict[str, Any]]]:
    """Text of ``lines`` joined by newlines (no final one) and its paragraph styles.

    ``lines`` are ``(text, named style or None for NORMAL_TEXT)``; ``index`` is where the
    text will be inserted. Every paragraph is styled explicitly (and un-bulleted): inserted
    paragraphs would otherwise inherit the style of the paragraph they were inserted into.
    """
    text = "\n".join(line for line, _ in lines)
    styles: list[dict[str, Any]] = []
    if not lines:
        return text, styles
    # Ranges stop before each paragraph's newline (a style applies to every paragraph the
    # range touches), so none reaches the segment's final newline.
    if _u16(text):
        styles.append(_style(index, index + _u16(text), "NORMAL_TEXT"))
        styles.append(
            {
                "deleteParagraphBullets": {
                    "range": {"startIndex": index, "endIndex": index + _u16(text)}
                }
            }
        )
    offset = index
    for line, named in lines:
        width = _u16(line)
        if named and width:
            styles.append(_style(offset, offset + width, named))
        offset += width + 1
    return text, styles


class _RequestsHttp:
    """The ``httplib2.Http`` interface googleapiclient calls, over ``AuthorizedSession``.

    ``request`` returns ``(httplib2.Response, bytes)``; transport failures raise
    ``requests`` exceptions and google-auth's ``RefreshError`` / ``TransportError``.
    Redirects are not followed.
    """

    def __init__(self, session: Any, timeout: tuple[float, float]) -> None:
        self.session = session
        self.credentials = session.credentials
        self.timeout = timeout

    def request(
        self,
        uri: str,
        method: str = "GET",
        body: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        **_unused: Any,  # redirections, connection_type: httplib2-only knobs
    ) -> tuple[httplib2.Response, bytes]:
        if isinstance(body, str):
            body = body.encode("utf-8")  # one send() for headers + body (http.client)
        response = self.session.request(
            method,
            uri,
            data=body,
            headers=dict(headers or {}),
            timeout=self.timeout,
            allow_redirects=False,
        )
        info: dict[str, Any] = {k.lower(): v for k, v in response.headers.items()}
        info["status"] = str(response.status_code)
        result = httplib2.Response(info)
        result.reason = response.reason or ""
        return result, cast(bytes, response.content)


def _error_details(exc: HttpError) -> tuple[str, str, str]:
    """(reason, status, message) from a Google error body; empty strings when absent."""
    try:
        error = json.loads(exc.content.decode("utf-8")).get("error", {})
    except (ValueError, AttributeError, UnicodeDecodeError):
        return "", "", str(getattr(exc, "reason", "") or "")
    if not isinstance(error, dict):
        return "", "", str(error)
    errors = error.get("errors") or [{}]
    reason = str(errors[0].get("reason", "")) if isinstance(errors[0], dict) else ""
    return reason, str(error.get("status", "")), str(error.get("message", ""))


def _headings_from(settings: Any) -> dict[str, tuple[str, ...]]:
    """``GOOGLE_LID_*_HEADINGS`` (comma-separated names) as the ``headings`` argument."""
    found: dict[str, tuple[str, ...]] = {}
    for section in DEFAULT_HEADINGS:
        raw = getattr(settings, f"google_lid_{section}_headings", None)
        if isinstance(raw, str) and raw.strip():
            found[section] = tuple(h.strip() for h in raw.split(",") if h.strip())
    return found


def _named_range(name: str, start: int, end: int) -> dict[str, Any]:
    return {"createNamedRange": {"name": name, "range": {"startIndex": start, "endIndex": end}}}


def _replace_named(name: str, text: str) -> dict[str, Any]:
    return {"replaceNamedRangeContent": {"namedRangeName": name, "text": text}}


class GoogleDocsLid:
    """Creates and maintains incident documents in Google Docs/Drive (see module doc).

    Thread-safe for concurrent calls from outbox workers: the HTTP session and credentials
    are shared; every method re-reads what it needs from Google.
    """

    def __init__(
        self,
        service_account_info: Mapping[str, Any],
        *,
        template_id: str | None = None,
        folder_id: str | None = None,
        domain: str | None = None,
        api_endpoint: str | None = None,
        token_uri: str | None = None,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        policy: AddressPolicy | None = None,
        headings: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """Build credentials and clients; no network call. ConfigError for a bad key."""
        info = dict(service_account_info)
        if token_uri:
            info["token_uri"] = token_uri
        try:
            credentials = service_account.Credentials.from_service_account_info(
                info, scopes=list(SCOPES)
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"GOOGLE_SERVICE_ACCOUNT_*: not a usable service-account key ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:200]})"
            ) from None
        self.service_account_email: str = str(info.get("client_email", "?"))
        self.template_id = template_id or None
        self.folder_id = folder_id or None
        self.domain = domain or None
        self.headings: dict[str, tuple[str, ...]] = {
            **DEFAULT_HEADINGS,
            **{k: tuple(v) for k, v in (headings or {}).items() if v},
        }
        self._credentials = credentials
        timeout = (connect_timeout, read_timeout)
        policy = policy or AddressPolicy()
        token_request = google.auth.transport.requests.Request(guarded_session(policy))
        session = guarded_session(
            policy,
            google.auth.transport.requests.AuthorizedSession(
                credentials, refresh_timeout=read_timeout, auth_request=token_request
            ),
        )
        self._auth_request = functools.partial(token_request, timeout=read_timeout)
        http = _RequestsHttp(session, timeout)
        endpoint = api_endpoint.rstrip("/") if api_endpoint else None
        drive = build(
            "drive",
            "v3",
            http=http,
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": f"{endpoint}/drive/v3/"} if endpoint else None,
        )
        docs = build(
            "docs",
            "v1",
            http=http,
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": f"{endpoint}/"} if endpoint else None,
        )
        # Resource objects are built once: each build of one costs ~30 ms of docstrings.
        self._files = drive.files()
        self._permissions_api = drive.permissions()
        self._documents = docs.documents()

    @classmethod
    def from_settings(cls, settings: GoogleSettings) -> GoogleDocsLid | None:
        """The provider for ``settings``; None when no service-account key is configured."""
        try:
            info = settings.google_service_account_info()
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"GOOGLE_SERVICE_ACCOUNT_FILE/_JSON unreadable: {type(exc).__name__}"
            ) from None
        if info is None:
            return None
        return cls(
            info,
            template_id=settings.google_lid_template_id,
            folder_id=settings.google_drive_folder_id,
            domain=settings.google_drive_domain,
            api_endpoint=settings.google_api_endpoint,
            token_uri=settings.google_token_uri,
            connect_timeout=settings.http_connect_timeout,
            read_timeout=settings.http_read_timeout,
            policy=AddressPolicy(allow_private=settings.allow_private_webhook_targets),
            headings=_headings_from(settings),
        )

    # ------------------------------------------------------------------ public API

    def create_document(
        self, view: IncidentView, *, idempotency_key: str, team_email: str | None = None
    ) -> LidDocument:
        """Create (or find again) the incident's document, fill it, and share it.

        Idempotent per ``idempotency_key``: the file made for the key is looked up first
        (``appProperties``) and reused, then each later step only does what is missing
        (placeholders still present, IMAS sections absent, permissions not yet granted).
        Shares: writer for ``view.lead_email`` and ``team_email`` (a Google Group address
        or a user), reader for ``GOOGLE_DRIVE_DOMAIN`` unless the incident is private; no
        notification e-mails. Raises RetryableProviderError / PermanentProviderError.
        """
        key = _app_key(idempotency_key)
        found = self._find_by_key(key)
        created = found is None
        if found is None:
            found = (
                self._copy_template(view, key)
                if self.template_id
                else self._create_blank(view, key)
            )
            log.info("Created LID document %s for %s", found.get("id"), view.short_id)
        doc_id = str(found["id"])
        self._fill(doc_id, view)
        warnings = self._share(doc_id, view, team_email)
        url = str(found.get("webViewLink") or f"https://docs.google.com/document/d/{doc_id}/edit")
        return LidDocument(doc_id, url, created, tuple(warnings))

    def sync_header(
        self, document_id: str, view: IncidentView, *, now: datetime | None = None
    ) -> bool:
        """Rewrite the status region with ``view``'s severity, status, lead and war room.

        Template values first: every named range ``imas.<PLACEHOLDER>`` left by the fill
        whose text differs from the current value is rewritten in place
        (``replaceNamedRangeContent``). When the template had a ``{{STATUS}}`` place and
        the document no status region, that is all; otherwise the status region is
        rewritten too. Returns False (and writes nothing) when everything already says
        the same, apart from the region's "Last synced" line: a retry does not create a
        new document revision. The region is appended at the end of the document if it
        is missing (a template without ``{{STATUS}}``).
        """
        changed, has_place = self._sync_values(document_id, view)
        if has_place:
            return changed
        lines = self._status_lines(view, now or datetime.now(UTC))

        def significant(values: Iterable[str]) -> list[str]:
            return [v for v in values if not v.startswith(LAST_SYNCED)]

        return (
            self._write_region(
                document_id,
                "status",
                lines,
                unchanged=lambda current: significant(current) == significant(lines),
            )
            or changed
        )

    def write_resolution(self, document_id: str, summary: str) -> bool:
        """Replace the resolution region with ``summary`` (one paragraph per line).

        Where: the IMAS resolution region when the document has one (documents laid
        out by IMAS), else under the template's own RESOLUTION heading (the text is
        wrapped in the named range ``imas.resolution`` and later rewritten in place),
        else in a "RESOLUTION (IMAS)" region appended at the end. Idempotent: returns
        False without writing when the document already holds it.
        """
        lines = [_clean(line) for line in summary.strip().splitlines()]
        lines = [line for line in lines if line] or [EMPTY]
        return self._write_block(document_id, "resolution", RESOLUTION_RANGE, lines)

    def write_postmortem(
        self, document_id: str, facts: Sequence[str], skeleton: Sequence[str] = ()
    ) -> bool:
        """Write the post-mortem draft under the document's own POST-MORTEM heading, or in
        an IMAS "POST-MORTEM (IMAS)" region when there is no such heading.

        ``facts`` (one paragraph per line) are IMAS's: wrapped in the named range
        ``imas.postmortem`` (or the region) and rewritten in place when they change (a
        reopened incident resolved again). ``skeleton`` (the review's empty sections) is
        written once, right after the facts, and then belongs to the reviewers. Idempotent:
        returns False without writing when the facts are already there.
        """
        cleaned = [_clean(line) or EMPTY for line in facts] or [EMPTY]
        trailer = [_clean(line) or EMPTY for line in skeleton]
        return self._write_block(
            document_id, "postmortem", POSTMORTEM_RANGE, cleaned, trailer=trailer
        )

    def append_timeline(self, document_id: str, entries: Sequence[TimelineLine]) -> int:
        """Add the entries whose ``⟦ev:key⟧`` tag is not yet in the document.

        Lines go into the timeline region in chronological order (by ``at``, then input
        order), between existing IMAS lines where they belong; text outside the region is
        never touched. A document without the region but with a TIMELINE heading of its
        own (``headings["timeline"]``, matched case-insensitively) gets the lines under
        that heading instead, each wrapped in a named range ``imas.ev.<key>`` rather than
        tagged (the ranges tell which entries are written, and where). Returns the number
        of lines written (0 on a repeat).
        """
        unique: dict[str, TimelineLine] = {}
        for entry in entries:
            if not _KEY_OK.fullmatch(entry.key):
                raise ValueError(
                    f"timeline key must be non-empty without spaces or ⟦⟧: {entry.key!r}"
                )
            unique.setdefault(entry.key, entry)
        if not unique:
            return 0
        ordered = sorted(unique.values(), key=lambda e: _fmt_time(e.at))
        for _ in range(_CONFLICT_ATTEMPTS):
            state = self._read(document_id)
            present = set(_TAG.findall(state.text)) | {
                r.name[len(EVENT_RANGE_PREFIX) :]
                for r in state.named
                if r.name.startswith(EVENT_RANGE_PREFIX)
            }
            missing = [e for e in ordered if e.key not in present]
            if not missing:
                return 0
            bounds = state.region("timeline")
            heading = state.heading(self.headings["timeline"]) if bounds is None else None
            if heading is not None:
                requests_ = self._timeline_under_heading(state, heading, missing)
            elif bounds is None:
                requests_ = self._append_sections(
                    state, [("timeline", [self._timeline_line(e) for e in missing])]
                )
            else:
                requests_ = self._timeline_inserts(state, bounds, missing)
            try:
                self._batch(document_id, requests_, state.revision_id)
            except _RevisionConflict:
                continue
            return len(missing)
        raise self._conflict_error(document_id)

    def share_with(self, document_id: str, email: str, *, role: str = "writer") -> str | None:
        """Give ``email`` (a Google account) ``role`` on the document, without notification
        e-mail; nothing when it already holds that role or higher. Returns the reason when
        Google refuses the share for good (e.g. no Google account for that address), None
        on success. Raises RetryableProviderError for transient failures."""
        warnings = self._grant(
            document_id, [{"type": "user", "role": role, "emailAddress": email.strip()}]
        )
        return warnings[0] if warnings else None

    def check(self) -> list[CheckResult]:
        """Live checks for ``imas doctor``: token exchange, template readable, folder writable.

        Never raises for a Google failure; each failure is a ``CheckResult(ok=False)`` with
        the reason and, where useful, a hint.
        """
        results: list[CheckResult] = []
        try:
            self._call(lambda: self._credentials.refresh(self._auth_request), "token exchange")
        except ProviderError as exc:
            results.append(
                CheckResult(
                    False,
                    f"Google token exchange as {self.service_account_email}: {exc.describe()}",
                )
            )
            return results
        results.append(
            CheckResult(True, f"Google token exchange OK ({self.service_account_email})")
        )
        if self.template_id:
            try:
                meta = self._execute(
                    self._files.get(
                        fileId=self.template_id,
                        supportsAllDrives=True,
                        fields="id,name,mimeType,capabilities/canCopy",
                    ),
                    "Drive files.get (LID template)",
                    target=f"the LID template {self.template_id}",
                )
                can_copy = meta.get("capabilities", {}).get("canCopy", True)
                if meta.get("mimeType") != DOC_MIME:
                    results.append(
                        CheckResult(
                            False,
                            f"LID template {self.template_id} is not a Google Doc ({meta.get('mimeType')})",
                        )
                    )
                elif not can_copy:
                    results.append(
                        CheckResult(
                            False,
                            f"LID template {self.template_id} cannot be copied by {self.service_account_email}",
                        )
                    )
                else:
                    results.append(
                        CheckResult(
                            True,
                            f"LID template readable: {meta.get('name')!r} ({self.template_id})",
                        )
                    )
            except ProviderError as exc:
                results.append(CheckResult(False, f"LID template: {exc.describe()}"))
        else:
            results.append(
                CheckResult(
                    True,
                    "no LID template (GOOGLE_LID_TEMPLATE_ID): documents are laid out from scratch",
                )
            )
        if self.folder_id:
            try:
                meta = self._execute(
                    self._files.get(
                        fileId=self.folder_id,
                        supportsAllDrives=True,
                        fields="id,name,driveId,capabilities/canAddChildren",
                    ),
                    "Drive files.get (LID folder)",
                    target=f"the Drive folder {self.folder_id}",
                )
                if meta.get("capabilities", {}).get("canAddChildren"):
                    where = "shared drive" if meta.get("driveId") else "My Drive"
                    results.append(
                        CheckResult(True, f"Drive folder writable: {meta.get('name')!r} ({where})")
                    )
                else:
                    results.append(
                        CheckResult(
                            False,
                            f"Drive folder {self.folder_id} is not writable by "
                            f"{self.service_account_email} (hint: give it Editor/Content manager access)",
                        )
                    )
            except ProviderError as exc:
                results.append(CheckResult(False, f"Drive folder: {exc.describe()}"))
        else:
            results.append(
                CheckResult(
                    True,
                    "no GOOGLE_DRIVE_FOLDER_ID: documents go to the service account's own Drive "
                    "(hint: service accounts may have no storage quota; prefer a shared-drive folder)",
                )
            )
        return results

    # ------------------------------------------------------------------ creation steps

    def _find_by_key(self, key: str) -> dict[str, Any] | None:
        q = f"appProperties has {{ key='{APP_KEY}' and value={_q_literal(key)} }} and trashed = false"
        if self.folder_id:
            q += f" and {_q_literal(self.folder_id)} in parents"
        result = self._execute(
            self._files.list(
                q=q,
                corpora="allDrives",
                supportsAllDrives=True,
                includeItemsFromAllDrives=True,
                orderBy="createdTime",
                pageSize=10,
                fields="incompleteSearch,files(id,name,webViewLink)",
            ),
            "Drive files.list",
            target=f"the Drive folder {self.folder_id}" if self.folder_id else None,
        )
        files = result.get("files") or []
        if not files and result.get("incompleteSearch"):
            log.warning("Drive search for LID key %s was incomplete; creating a new document", key)
        return cast(dict[str, Any], files[0]) if files else None

    def _file_body(self, view: IncidentView, key: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": f"{view.short_id} | {_clean(view.title)[:200]}",
            "appProperties": {APP_KEY: key, APP_INCIDENT: view.short_id},
        }
        if self.folder_id:
            body["parents"] = [self.folder_id]
        return body

    def _copy_template(self, view: IncidentView, key: str) -> dict[str, Any]:
        return self._execute(
            self._files.copy(
                fileId=self.template_id,
                body=self._file_body(view, key),
                supportsAllDrives=True,
                fields="id,name,webViewLink",
            ),
            "Drive files.copy (LID template)",
            target=(
                f"the LID template {self.template_id}"
                + (f" and the Drive folder {self.folder_id}" if self.folder_id else "")
            ),
        )

    def _create_blank(self, view: IncidentView, key: str) -> dict[str, Any]:
        body = self._file_body(view, key)
        body["mimeType"] = DOC_MIME
        return self._execute(
            self._files.create(body=body, supportsAllDrives=True, fields="id,name,webViewLink"),
            "Drive files.create",
            target=f"the Drive folder {self.folder_id}" if self.folder_id else None,
        )

    def _fill(self, doc_id: str, view: IncidentView) -> None:
        """Lay out a blank document, or fill a template's placeholders; add the IMAS
        regions the document has no place of its own for.

        Each placeholder is replaced by an index-based delete + insert (revision-guarded);
        the value of a live placeholder (``LIVE_PLACEHOLDERS``) is wrapped in a named
        range ``imas.<NAME>`` so later syncs rewrite it in place. Re-running finds no
        placeholder and every region or place present, and writes nothing.
        """
        conflicts = 0
        filled = False
        for _ in range(_CONFLICT_ATTEMPTS + 3):
            state = self._read(doc_id)
            if state.is_blank:
                requests_ = self._scratch_layout(view)
            else:
                requests_ = [] if filled else self._placeholder_requests(state, view)
                filled = True
                if not requests_:
                    missing = [
                        (name, self._initial_region(name, view))
                        for name in self._missing_regions(state)
                    ]
                    if not missing:
                        return
                    requests_ = self._append_sections(state, missing)
            try:
                self._batch(doc_id, requests_, state.revision_id)
            except _RevisionConflict:
                conflicts += 1
                filled = False
                if conflicts >= _CONFLICT_ATTEMPTS:
                    break
                continue
            if state.is_blank:
                return
        raise self._conflict_error(doc_id)

    def _placeholder_requests(self, state: _DocState, view: IncidentView) -> list[dict[str, Any]]:
        values = self._placeholder_values(view)
        found: list[tuple[int, int, str]] = []
        for paragraph in state.paragraphs:
            for match in _PLACEHOLDER.finditer(paragraph.text):
                if match.group(1) in values:
                    start = paragraph.start + _u16(paragraph.text[: match.start()])
                    found.append((start, start + _u16(match.group(0)), match.group(1)))
        requests_: list[dict[str, Any]] = []
        for start, end, name in sorted(found, reverse=True):  # later ones first
            value = values[name]
            requests_ += [_delete(start, end), _insert(start, value)]
            if name in LIVE_PLACEHOLDERS:
                requests_.append(_named_range(RANGE_PREFIX + name, start, start + _u16(value)))
        if requests_:
            # Placeholders outside the body's paragraphs (tables, headers) are filled too,
            # untracked.
            requests_ += [
                {
                    "replaceAllText": {
                        "containsText": {"text": "{{" + name + "}}", "matchCase": True},
                        "replaceText": values[name],
                    }
                }
                for name in PLACEHOLDERS
            ]
        return requests_

    def _missing_regions(self, state: _DocState) -> list[str]:
        missing = []
        for name in CREATION_REGIONS:
            if state.region(name) is not None:
                continue
            if name == "status" and state.ranges(RANGE_PREFIX + "STATUS"):
                continue
            if name != "status" and state.heading(self.headings[name]) is not None:
                continue
            missing.append(name)
        return missing

    def _sync_values(self, document_id: str, view: IncidentView) -> tuple[bool, bool]:
        """Rewrite the template's live values in place. Returns (changed, the document
        has a ``{{STATUS}}`` place and no status region)."""
        values = self._placeholder_values(view)
        for _ in range(_CONFLICT_ATTEMPTS):
            state = self._read(document_id)
            has_place = bool(state.ranges(RANGE_PREFIX + "STATUS")) and (
                state.region("status") is None
            )
            requests_ = [
                _replace_named(RANGE_PREFIX + name, values[name])
                for name in LIVE_PLACEHOLDERS
                if any(
                    state.text_at(r.start, r.end) != values[name]
                    for r in state.ranges(RANGE_PREFIX + name)
                )
            ]
            if not requests_:
                return False, has_place
            try:
                self._batch(document_id, requests_, state.revision_id)
            except _RevisionConflict:
                continue
            return True, has_place
        raise self._conflict_error(document_id)

    def _write_block(
        self,
        document_id: str,
        section: str,
        range_name: str,
        lines: list[str],
        *,
        trailer: Sequence[str] = (),
    ) -> bool:
        """``lines`` in the ``section`` region if the document has it, else in the named
        range ``range_name`` (created under the section's heading), else in a new region."""
        text = "\n".join(lines)
        for _ in range(_CONFLICT_ATTEMPTS):
            state = self._read(document_id)
            ranges = state.ranges(range_name)
            heading = state.heading(self.headings[section])
            if state.region(section) is not None or (not ranges and heading is None):
                return self._write_region(
                    document_id,
                    section,
                    lines,
                    unchanged=lambda current: current == lines,
                    trailer=trailer,
                )
            if ranges:
                if all(state.text_at(r.start, r.end) == text for r in ranges):
                    return False
                requests_ = [_replace_named(range_name, text)]
            else:
                assert heading is not None
                requests_ = self._insert_lines(
                    state, heading, [*lines, *trailer], block=range_name, block_lines=len(lines)
                )
            try:
                self._batch(document_id, requests_, state.revision_id)
            except _RevisionConflict:
                continue
            return True
        raise self._conflict_error(document_id)

    @staticmethod
    def _insert_lines(
        state: _DocState,
        after: int,
        lines: Sequence[str],
        *,
        names: Sequence[str | None] = (),
        block: str | None = None,
        block_lines: int | None = None,
    ) -> list[dict[str, Any]]:
        """Requests inserting ``lines`` as new plain paragraphs right after paragraph
        position ``after``; line ``i`` gets the named range ``names[i]``, the whole block
        the named range ``block``. Inserted paragraphs would inherit the style of the
        paragraph they split (a heading), so they are styled NORMAL_TEXT explicitly."""
        if after + 1 < len(state.paragraphs):
            at = state.paragraphs[after + 1].start
            inserted = "".join(line + "\n" for line in lines)
            first = at
        else:
            at = state.paragraphs[after].end - 1  # before the body's final newline
            inserted = "".join("\n" + line for line in lines)
            first = at + 1
        last_end = first + sum(_u16(line) + 1 for line in lines) - 1
        requests_: list[dict[str, Any]] = [_insert(at, inserted)]
        if last_end > first:
            requests_.append(_style(first, last_end, "NORMAL_TEXT"))
            requests_.append(
                {"deleteParagraphBullets": {"range": {"startIndex": first, "endIndex": last_end}}}
            )
            if block:
                covered = lines if block_lines is None else lines[:block_lines]
                block_end = first + sum(_u16(line) + 1 for line in covered) - 1
                requests_.append(_named_range(block, first, block_end))
        offset = first
        for i, line in enumerate(lines):
            name = names[i] if i < len(names) else None
            if name and _u16(line):
                requests_.append(_named_range(name, offset, offset + _u16(line)))
            offset += _u16(line) + 1
        return requests_

    def _timeline_under_heading(
        self, state: _DocState, heading: int, missing: Sequence[TimelineLine]
    ) -> list[dict[str, Any]]:
        """Insert ``missing`` under the template's TIMELINE heading, in time order among the
        lines IMAS wrote there before (found by their ``imas.ev.*`` named ranges)."""
        written: list[tuple[str, int]] = []
        for r in state.named:
            if not r.name.startswith(EVENT_RANGE_PREFIX):
                continue
            position = state.paragraph_at(r.start)
            if position is None:
                continue
            match = _LINE_TIME.match(state.text_at(r.start, r.end))
            written.append((match.group(1) if match else "", position))
        last = max((position for _, position in written), default=heading)
        groups: dict[int, list[TimelineLine]] = {}
        for entry in missing:  # already in chronological order
            stamp = _fmt_time(entry.at)[:-4]
            later = [position for when, position in written if when > stamp]
            after = min(later) - 1 if later else last
            groups.setdefault(after, []).append(entry)
        requests_: list[dict[str, Any]] = []
        for after in sorted(groups, reverse=True):  # highest index first
            entries = groups[after]
            requests_ += self._insert_lines(
                state,
                after,
                [self._timeline_text(e) for e in entries],
                names=[EVENT_RANGE_PREFIX + e.key for e in entries],
            )
        return requests_

    def _share(self, doc_id: str, view: IncidentView, team_email: str | None) -> list[str]:
        wanted: list[dict[str, Any]] = []
        if view.lead_email:
            wanted.append({"type": "user", "role": "writer", "emailAddress": view.lead_email})
        if team_email and team_email.lower() != (view.lead_email or "").lower():
            wanted.append({"type": "group", "role": "writer", "emailAddress": team_email})
        if self.domain and not view.private:
            wanted.append(
                {
                    "type": "domain",
                    "role": "reader",
                    "domain": self.domain,
                    "allowFileDiscovery": False,
                }
            )
        return self._grant(doc_id, wanted)

    def _grant(self, doc_id: str, wanted: list[dict[str, Any]]) -> list[str]:
        """Create the permissions in ``wanted`` that are not already held (at that role or
        higher). Returns the warnings of refused shares; raises RetryableProviderError."""
        if not wanted:
            return []
        existing = self._permissions(doc_id)
        warnings: list[str] = []
        for perm in wanted:
            who = str(perm.get("emailAddress") or perm.get("domain")).lower()
            if any(
                (p.get("emailAddress") or p.get("domain") or "").lower() == who
                and _ROLE_RANK.get(str(p.get("role")), -1) >= _ROLE_RANK[perm["role"]]
                for p in existing
            ):
                continue
            try:
                self._execute(
                    self._permissions_api.create(
                        fileId=doc_id,
                        body=perm,
                        sendNotificationEmail=False,
                        supportsAllDrives=True,
                        fields="id",
                    ),
                    "Drive permissions.create",
                )
            except PermanentProviderError as exc:
                warnings.append(f"could not share with {who} as {perm['role']}: {exc.describe()}")
                log.warning("LID %s: could not share with %s: %s", doc_id, who, exc.describe())
        return warnings

    def _permissions(self, doc_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self._execute(
                self._permissions_api.list(
                    fileId=doc_id,
                    supportsAllDrives=True,
                    pageSize=100,
                    pageToken=token,
                    fields="nextPageToken,permissions(id,type,role,emailAddress,domain)",
                ),
                "Drive permissions.list",
            )
            found.extend(page.get("permissions") or [])
            token = page.get("nextPageToken")
            if not token:
                return found

    # ------------------------------------------------------------------ document content

    def _placeholder_values(self, view: IncidentView) -> dict[str, str]:
        description = "\n".join(
            _clean(line) for line in (view.description or "").splitlines()
        ).strip()
        return {
            "INCIDENT_ID": _or_empty(view.short_id),
            "INCIDENT_TITLE": _or_empty(view.title),
            "SEVERITY": _or_empty(view.severity),
            "STATUS": _or_empty(view.status),
            "SERVICE_NAME": _or_empty(view.service_name),
            "TEAM_NAME": _or_empty(view.team_name),
            "CREATED_AT": _fmt_time(view.created_at),
            "DESCRIPTION": description or EMPTY,
            "LEAD_NAME": _or_empty(view.lead_name),
            "LEAD_EMAIL": _or_empty(view.lead_email),
            "WAR_ROOM_URL": _or_empty(view.war_room_url),
            "RUNBOOK_URL": _or_empty(view.runbook_url),
            "INCIDENT_URL": _or_empty(view.incident_url),
            "ACKNOWLEDGED_AT": _fmt_time(view.acknowledged_at) if view.acknowledged_at else EMPTY,
            "RESOLVED_AT": _fmt_time(view.resolved_at) if view.resolved_at else EMPTY,
            "TIME_TO_ACKNOWLEDGE": format_duration(
                seconds_between(view.created_at, view.acknowledged_at)
            ),
            "TIME_TO_RESOLVE": format_duration(seconds_between(view.created_at, view.resolved_at)),
            "DURATION": format_duration(seconds_between(view.created_at, view.resolved_at)),
        }

    @staticmethod
    def _status_lines(view: IncidentView, now: datetime) -> list[str]:
        emoji = SEVERITY_EMOJI.get(view.severity, "⚪")
        name, email = _clean(view.lead_name), _clean(view.lead_email)
        lead = f"{name} <{email}>" if name and email else (name or email or EMPTY)
        return [
            f"{emoji} {_clean(view.severity)} · {_clean(view.status)}",
            f"Lead: {lead}",
            f"War room: {_or_empty(view.war_room_url)}",
            f"{LAST_SYNCED}{_fmt_time(now)}",
        ]

    def _initial_region(self, name: str, view: IncidentView) -> list[str]:
        if name == "status":
            return self._status_lines(view, datetime.now(UTC))
        if name == "resolution":
            return [_clean(view.resolution_summary) or RESOLUTION_PENDING]
        return []

    @staticmethod
    def _timeline_text(entry: TimelineLine) -> str:
        parts = [_fmt_time(entry.at), _clean(entry.type) or EMPTY, _clean(entry.message) or EMPTY]
        if entry.actor:
            parts.append(_clean(entry.actor))
        return " · ".join(parts)

    @classmethod
    def _timeline_line(cls, entry: TimelineLine) -> str:
        return cls._timeline_text(entry) + f" ⟦ev:{entry.key}⟧"

    @staticmethod
    def _region_block(name: str, content: Sequence[str]) -> list[tuple[str, str | None]]:
        return [
            (REGION_HEADINGS[name], "HEADING_2"),
            (start_marker(name), None),
            *((line, None) for line in content),
            (end_marker(name), None),
        ]

    def _scratch_layout(self, view: IncidentView) -> list[dict[str, Any]]:
        """The whole document for a blank file, inserted at index 1 in one batch."""
        v = self._placeholder_values(view)
        lines: list[tuple[str, str | None]] = [
            (f"{v['INCIDENT_ID']} | {v['INCIDENT_TITLE']}", "TITLE"),
            ("Incident details", "HEADING_1"),
            (f"Incident: {v['INCIDENT_ID']}", None),
            (f"Title: {v['INCIDENT_TITLE']}", None),
            (f"Severity (declared): {v['SEVERITY']}", None),
            (f"Status (declared): {v['STATUS']}", None),
            (f"Service: {v['SERVICE_NAME']}", None),
            (f"Team: {v['TEAM_NAME']}", None),
            (f"Lead (declared): {v['LEAD_NAME']} <{v['LEAD_EMAIL']}>", None),
            (f"Created: {v['CREATED_AT']}", None),
            (f"Incident page: {v['INCIDENT_URL']}", None),
            (f"War room: {v['WAR_ROOM_URL']}", None),
            (f"Runbook: {v['RUNBOOK_URL']}", None),
            *self._region_block("status", self._initial_region("status", view)),
            ("Description", "HEADING_1"),
            *((line or " ", None) for line in v["DESCRIPTION"].splitlines()),
            ("COMMUNICATION", "HEADING_1"),
            ("Status updates, audiences and next update time.", None),
            ("INVESTIGATION NOTES", "HEADING_1"),
            ("Hypotheses, findings, commands run, dashboards.", None),
            ("RESOLUTION", "HEADING_1"),
            *self._region_block("resolution", self._initial_region("resolution", view)),
            ("TIMELINE", "HEADING_1"),
            *self._region_block("timeline", []),
            ("POST-MORTEM", "HEADING_1"),
            ("Root cause", "HEADING_2"),
            (EMPTY, None),
            ("Contributing factors", "HEADING_2"),
            (EMPTY, None),
            ("Action items", "HEADING_2"),
            (EMPTY, None),
        ]
        text, styles = _layout(1, lines)
        return [_insert(1, text), *styles]

    def _append_sections(
        self,
        state: _DocState,
        sections: Sequence[tuple[str, Sequence[str]]],
        trailer: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """Requests appending region blocks after the last paragraph of the document."""
        last = state.paragraphs[-1]
        at = last.end - 1  # before the body's final newline
        prefix = "" if last.line == "" else "\n"  # reuse a trailing empty paragraph
        lines: list[tuple[str, str | None]] = []
        for name, content in sections:
            lines.extend(self._region_block(name, content))
        lines.extend((line, None) for line in trailer)
        text, styles = _layout(at + _u16(prefix), lines)
        return [_insert(at, prefix + text), *styles]

    def _timeline_inserts(
        self, state: _DocState, bounds: tuple[int, int], missing: Sequence[TimelineLine]
    ) -> list[dict[str, Any]]:
        region = state.paragraphs[bounds[0] + 1 : bounds[1]]
        dated: list[tuple[str, int]] = []
        for paragraph in region:
            match = _LINE_TIME.match(paragraph.text)
            if match:
                dated.append((match.group(1), paragraph.start))
        default_at = state.paragraphs[bounds[1]].start
        groups: dict[int, list[str]] = {}
        for entry in missing:  # already in chronological order
            stamp = _fmt_time(entry.at)[:-4]
            index = next((start for when, start in dated if when > stamp), default_at)
            groups.setdefault(index, []).append(self._timeline_line(entry) + "\n")
        # Highest index first, so earlier indices stay valid within the batch.
        return [_insert(index, "".join(groups[index])) for index in sorted(groups, reverse=True)]

    def _write_region(
        self,
        document_id: str,
        name: str,
        lines: list[str],
        *,
        unchanged: Callable[[list[str]], bool],
        trailer: Sequence[str] = (),
    ) -> bool:
        for _ in range(_CONFLICT_ATTEMPTS):
            state = self._read(document_id)
            bounds = state.region(name)
            if bounds is None:
                requests_ = self._append_sections(state, [(name, lines)], trailer)
            else:
                if unchanged(state.region_lines(bounds)):
                    return False
                start = state.paragraphs[bounds[0]].end
                stop = state.paragraphs[bounds[1]].start
                requests_ = []
                if stop > start:
                    requests_.append(_delete(start, stop))
                if lines:
                    requests_.append(_insert(start, "".join(line + "\n" for line in lines)))
            try:
                self._batch(document_id, requests_, state.revision_id)
            except _RevisionConflict:
                continue
            return True
        raise self._conflict_error(document_id)

    # ------------------------------------------------------------------ Google calls

    def _read(self, document_id: str) -> _DocState:
        doc = self._execute(
            self._documents.get(
                documentId=document_id,
                fields=(
                    "revisionId,namedRanges,"
                    "body/content(startIndex,endIndex,paragraph/elements/textRun/content)"
                ),
            ),
            "Docs documents.get",
            target=f"the document {document_id}",
        )
        paragraphs = []
        for element in (doc.get("body") or {}).get("content") or []:
            paragraph = element.get("paragraph")
            if paragraph is None:
                continue
            text = "".join(
                (run.get("textRun") or {}).get("content", "")
                for run in paragraph.get("elements") or []
            )
            paragraphs.append(
                _Paragraph(int(element.get("startIndex", 0)), int(element["endIndex"]), text)
            )
        if not paragraphs:
            raise PermanentProviderError(f"Google Doc {document_id} has no body paragraphs")
        named: list[_Named] = []
        for name, group in (doc.get("namedRanges") or {}).items():
            if not str(name).startswith(RANGE_PREFIX):
                continue  # the team's own named ranges are not IMAS's business
            for item in (group or {}).get("namedRanges") or []:
                for rng in item.get("ranges") or []:
                    if rng.get("segmentId"):
                        continue  # headers, footers, footnotes
                    named.append(
                        _Named(
                            str(item.get("namedRangeId", "")),
                            str(name),
                            int(rng.get("startIndex", 0)),
                            int(rng.get("endIndex", 0)),
                        )
                    )
        return _DocState(doc.get("revisionId"), tuple(paragraphs), tuple(named))

    def _batch(
        self, document_id: str, requests_: list[dict[str, Any]], revision_id: str | None
    ) -> None:
        if not requests_:
            return
        body: dict[str, Any] = {"requests": requests_}
        if revision_id:
            body["writeControl"] = {"requiredRevisionId": revision_id}
        self._execute(
            self._documents.batchUpdate(documentId=document_id, body=body),
            "Docs documents.batchUpdate",
            conflict=revision_id is not None,
        )

    def _conflict_error(self, document_id: str) -> RetryableProviderError:
        return RetryableProviderError(
            f"Google Doc {document_id} kept changing while IMAS was writing to it",
            code="revision_conflict",
            retry_after=5.0,
        )

    def _execute(
        self, request: Any, action: str, *, target: str | None = None, conflict: bool = False
    ) -> dict[str, Any]:
        """Run one API request once; map every failure to a ProviderError."""
        try:
            return self._call(lambda: request.execute(num_retries=0), action, target=target)
        except PermanentProviderError as exc:
            if (
                conflict
                and exc.code
                and exc.code.startswith("HTTP 400")
                and "revision" in exc.message.lower()
            ):
                raise _RevisionConflict() from exc
            raise

    def _call(
        self, fn: Callable[[], Any], action: str, *, target: str | None = None
    ) -> dict[str, Any]:
        try:
            result = fn()
        except HttpError as exc:
            raise self._http_error(exc, action, target) from exc
        except google.auth.exceptions.RefreshError as exc:
            raise self._refresh_error(exc) from exc
        except google.auth.exceptions.TransportError as exc:
            raise RetryableProviderError(
                f"Google token endpoint unreachable: {type(exc).__name__}", code="token_transport"
            ) from exc
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ) as exc:
            raise PermanentProviderError(
                f"Google {action}: invalid URL ({exc})",
                hint="check GOOGLE_API_ENDPOINT / GOOGLE_TOKEN_URI",
            ) from exc
        except (requests.exceptions.RequestException, OSError) as exc:
            raise RetryableProviderError(
                f"Google {action}: {type(exc).__name__}", code="network"
            ) from exc
        return cast(dict[str, Any], result) if isinstance(result, dict) else {}

    def _http_error(self, exc: HttpError, action: str, target: str | None) -> ProviderError:
        status = int(exc.status_code)
        reason, g_status, message = _error_details(exc)
        code = f"HTTP {status}" + (f" {reason}" if reason else "")
        text = f"Google {action} failed: {code}: {message or g_status or 'no details'}"
        retry_after = parse_retry_after(
            exc.resp.get("retry-after") if exc.resp is not None else None
        )
        if (
            status in (408, 429)
            or status >= 500
            or (status == 403 and reason in _RETRYABLE_403_REASONS)
        ):
            return RetryableProviderError(text, code=code, retry_after=retry_after)
        email = self.service_account_email
        if status == 401:
            return PermanentProviderError(
                text,
                code=code,
                hint=f"Google rejected the access token of {email}: check the service-account key",
            )
        if reason == "storageQuotaExceeded":
            return PermanentProviderError(
                text,
                code=code,
                hint=f"{email} has no Drive storage: set GOOGLE_DRIVE_FOLDER_ID to a folder in a shared drive",
            )
        if status in (403, 404) and target:
            return PermanentProviderError(
                f"{text} (as {email})",
                code=code,
                hint=f"share {target} with the service account {email} (or check the ID)",
            )
        return PermanentProviderError(text, code=code)

    def _refresh_error(self, exc: google.auth.exceptions.RefreshError) -> ProviderError:
        detail = str(exc.args[0]) if exc.args else type(exc).__name__
        detail = detail.splitlines()[0][:300]
        if getattr(exc, "retryable", False):
            return RetryableProviderError(
                f"Google token endpoint failed: {detail}", code="token_endpoint"
            )
        return PermanentProviderError(
            f"Google token exchange refused for {self.service_account_email}: {detail}",
            code="invalid_credentials",
            hint=(
                "check the service-account key (GOOGLE_SERVICE_ACCOUNT_FILE/_JSON) is current "
                "and not revoked, GOOGLE_TOKEN_URI, and the host clock"
            ),
        )


def doctor_checks(settings: GoogleSettings) -> list[CheckResult]:
    """``imas doctor`` entries for Google: a single "not configured" entry when disabled."""
    try:
        lid = GoogleDocsLid.from_settings(settings)
    except ConfigError as exc:
        return [CheckResult(False, str(exc))]
    if lid is None:
        return [
            CheckResult(
                True,
                "Google LID: not configured (GOOGLE_SERVICE_ACCOUNT_FILE / GOOGLE_SERVICE_ACCOUNT_JSON unset); "
                "the LID step is disabled",
            )
        ]
    return lid.check()
