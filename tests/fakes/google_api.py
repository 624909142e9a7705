"""A local stand-in for Google's OAuth token endpoint, Drive v3 and Docs v1.

``FakeGoogle`` is a real HTTP server on ``127.0.0.1:<random port>`` that the real
``google-api-python-client`` talks to (``client_options={"api_endpoint": ...}``) with a
real service-account JWT exchange (``token_uri`` = ``fake.token_uri``). It keeps files,
permissions and documents in memory and answers with Google's shapes:

* ``POST /token``: JWT-bearer grant; the assertion's RS256 signature is checked with the
  public key given to ``register_service_account``; ``iss`` must be registered and
  ``scope`` must name Drive or Docs. Errors use the OAuth shape
  (``{"error": "invalid_grant", "error_description": ...}``).
* Every API call needs ``Authorization: Bearer <issued token>``; otherwise 401 with
  Google's error body.
* Drive: ``files.copy``, ``files.create`` (metadata only), ``files.get``, ``files.list``
  (``q`` limited to ``appProperties has { key='K' and value='V' }``, ``trashed = false``
  and ``'<id>' in parents`` joined by ``and``), ``permissions.create`` / ``.list``. Files
  in a shared drive answer 404 ``notFound`` unless ``supportsAllDrives=true``. The
  ``fields`` parameter is honoured (partial responses); without it Drive's defaults
  (``kind,id,name,mimeType``) are returned.
* Docs: ``documents.create`` (only ``title`` honoured), ``documents.get`` (``body.content``
  = a section break then one paragraph per line, indices 1-based in UTF-16 code units as
  in Google Docs, final newline), ``documents.batchUpdate`` with ``replaceAllText``,
  ``insertText``, ``deleteContentRange``, the named-range requests ``createNamedRange`` /
  ``deleteNamedRange`` / ``replaceNamedRangeContent`` and (validated, then ignored: the
  model is plain text) ``updateParagraphStyle`` / ``deleteParagraphBullets``. Requests
  apply in order, all or nothing; ``writeControl.requiredRevisionId`` is enforced.
* Named ranges (Docs v1 ``NamedRange``): ``documents.get`` answers them in
  ``namedRanges`` (a map name -> ``NamedRanges {name, namedRanges: [{namedRangeId, name,
  ranges: [{startIndex, endIndex}]}]}``, omitted when empty, as Google omits empty
  fields). They move with the text: an insertion strictly inside a range widens it, one
  at or before its start shifts it, one at its end leaves it alone; a deletion clips it,
  and a range whose whole content is deleted disappears. ``replaceAllText`` and
  ``replaceNamedRangeContent`` act as deletions then insertions, so ranges follow;
  ``replaceNamedRangeContent`` keeps the replaced range around the new text (by
  ``namedRangeName`` every range of that name is replaced; an unknown id is a 400, an
  unknown name a no-op, as the discovery document says). ``files.copy`` copies the named ranges; ``edit_document`` (a human edit) moves
  them along a character diff of the old and new text. Names are 1-256 UTF-16 code units.
* Request bodies are validated against the discovery schemas bundled with
  googleapiclient (unknown fields are errors), so a misspelt request fails here as it
  would at Google (400 ``INVALID_ARGUMENT`` "Unknown name ...").

Error bodies: ``{"error": {"code", "message", "status", "errors": [{"domain", "reason",
"message"}]}}``.

Fault injection: ``inject(regex, status=500, times=1)`` answers an error instead of
handling the call; ``inject(regex, drop_response=True)`` handles the call and then closes
the socket without answering; ``inject(regex, status=None, action=fn)`` runs ``fn``
before the call (e.g. a human editing the document). The regex is searched in
``"<METHOD> <path>"`` (path without the query string). ``deny(file_id)`` makes a file
answer 403.

Inspection: ``files`` (dict by id), ``document_text(doc_id)``, ``named_ranges(doc_id)``
(``[(name, text)]`` in document order), ``permissions(file_id)``,
``calls`` (every request, in order), ``edit_document(doc_id, text)`` (a human edit).
"""

from __future__ import annotations

import base64
import difflib
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import googleapiclient
import jsonschema
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

DOC_MIME = "application/vnd.google-apps.document"
FOLDER_MIME = "application/vnd.google-apps.folder"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DRIVE_SCOPES = (
    "https://www.googleapis.com/auth/drive",
    "https://www.googleapis.com/auth/drive.file",
)
DOCS_SCOPES = ("https://www.googleapis.com/auth/documents", *DRIVE_SCOPES)
ROLES = ("owner", "organizer", "fileOrganizer", "writer", "commenter", "reader")
PERMISSION_TYPES = ("user", "group", "domain", "anyone")
STATUS_TEXT = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
DEFAULT_REASON = {
    400: "badRequest",
    401: "authError",
    403: "forbidden",
    404: "notFound",
    429: "rateLimitExceeded",
    500: "backendError",
    502: "backendError",
    503: "backendError",
    504: "backendError",
}


# --------------------------------------------------------------------------- schemas


def _discovery_dir() -> Path:
    return Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"


def _convert(node: dict[str, Any]) -> dict[str, Any]:
    """One discovery schema node as JSON Schema; objects are closed unless stated."""
    if "$ref" in node:
        return {"$ref": f"#/$defs/{node['$ref']}"}
    out: dict[str, Any] = {}
    kind = node.get("type")
    if kind == "any":
        return {}
    if kind:
        out["type"] = kind
    if "enum" in node:
        out["enum"] = node["enum"]
    if kind == "array" and "items" in node:
        out["items"] = _convert(node["items"])
    if kind == "object":
        out["properties"] = {k: _convert(v) for k, v in node.get("properties", {}).items()}
        extra = node.get("additionalProperties")
        out["additionalProperties"] = _convert(extra) if isinstance(extra, dict) else False
    return out


@cache
def _validator(api: str, schema_name: str) -> jsonschema.Draft202012Validator:
    discovery = json.loads((_discovery_dir() / f"{api}.json").read_text())
    defs = {name: _convert(node) for name, node in discovery["schemas"].items()}
    if schema_name == "Permission":  # discovery gives no enum for these two
        defs["Permission"]["properties"]["role"]["enum"] = list(ROLES)
        defs["Permission"]["properties"]["type"]["enum"] = list(PERMISSION_TYPES)
    return jsonschema.Draft202012Validator({"$ref": f"#/$defs/{schema_name}", "$defs": defs})


def _where(path: Any) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def validate_body(api: str, schema_name: str, body: Any) -> None:
    """Raise ``ApiError`` 400 as Google does when ``body`` does not fit the schema."""
    error = jsonschema.exceptions.best_match(_validator(api, schema_name).iter_errors(body))
    if error is None:
        return
    where = _where(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in allowed]
        name = unknown[0] if unknown else "?"
        at = f" at '{where}'" if where else ""
        message = f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'
    else:
        message = f"Invalid value at '{where or 'body'}': {error.message}"
    raise ApiError(400, message, reason="badRequest")


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An error answer in Google's JSON shape."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        status: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or DEFAULT_REASON.get(code, "error")
        self.status = status or STATUS_TEXT.get(code, "UNKNOWN")
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "status": self.status,
                "errors": [{"domain": "global", "reason": self.reason, "message": self.message}],
            }
        }


class OAuthError(Exception):
    """An error answer of the token endpoint (OAuth 2 shape)."""

    def __init__(self, code: int, error: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.error = error
        self.description = description


# --------------------------------------------------------------------------- helpers


def u16len(text: str) -> int:
    """Length in UTF-16 code units: the unit of every Google Docs index."""
    return len(text.encode("utf-16-le")) // 2


def _py_index(text: str, u16: int) -> int:
    """The Python index of UTF-16 offset ``u16`` in ``text``; ValueError if it splits a pair."""
    count = 0
    for i, ch in enumerate(text):
        if count == u16:
            return i
        count += 2 if ord(ch) > 0xFFFF else 1
        if count > u16:
            raise ValueError("index splits a surrogate pair")
    if count == u16:
        return len(text)
    raise ValueError("index out of range")


def _parse_fields(spec: str) -> dict[str, Any]:
    """Parse a Drive ``fields`` mask (``a,b(c,d),e/f``) into a tree; ``{}`` = whole value."""
    tree: dict[str, Any] = {}
    pos = 0

    def parse_list(end: str | None) -> dict[str, Any]:
        nonlocal pos
        out: dict[str, Any] = {}
        while pos < len(spec):
            match = re.compile(r"\s*([\w*]+(?:/[\w*]+)*)\s*").match(spec, pos)
            if not match:
                raise ApiError(400, f"Invalid field selection {spec}", reason="invalidParameter")
            pos = match.end()
            node = out
            parts = match.group(1).split("/")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            leaf = node.setdefault(parts[-1], {})
            if pos < len(spec) and spec[pos] == "(":
                pos += 1
                leaf.update(parse_list(")"))
            if pos < len(spec) and spec[pos] == ",":
                pos += 1
                continue
            if end and pos < len(spec) and spec[pos] == end:
                pos += 1
                return out
        if end:
            raise ApiError(400, f"Invalid field selection {spec}", reason="invalidParameter")
        return out

    tree = parse_list(None)
    return tree


def _select(value: Any, tree: dict[str, Any]) -> Any:
    if not tree or "*" in tree:
        return value
    if isinstance(value, list):
        return [_select(v, tree) for v in value]
    if not isinstance(value, dict):
        return value
    return {k: _select(value[k], sub) for k, sub in tree.items() if k in value}


def _new_id() -> str:
    return "1" + secrets.token_urlsafe(32)[:43]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Call:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class _Fault:
    pattern: re.Pattern[str]
    status: int | None
    times: int
    drop_response: bool
    retry_after: str | None
    reason: str | None
    message: str | None
    action: Callable[[], None] | None
    used: int = 0


@dataclass
class _Range:
    """One named range of the body: ``[start, end)`` in UTF-16 document indices."""

    id: str
    name: str
    start: int
    end: int


def _after_insert(ranges: list[_Range], index: int, length: int) -> list[_Range]:
    out = []
    for r in ranges:
        if index <= r.start:
            out.append(_Range(r.id, r.name, r.start + length, r.end + length))
        elif index < r.end:
            out.append(_Range(r.id, r.name, r.start, r.end + length))
        else:
            out.append(r)
    return out


def _after_delete(ranges: list[_Range], start: int, stop: int) -> list[_Range]:
    width = stop - start

    def move(x: int) -> int:
        return x if x <= start else (start if x < stop else x - width)

    moved = [_Range(r.id, r.name, move(r.start), move(r.end)) for r in ranges]
    return [r for r in moved if r.end > r.start]


def _named_range_id() -> str:
    return "kix." + secrets.token_hex(6)


@dataclass
class _Doc:
    text: str = "\n"
    revision: int = 1
    rev_ids: dict[int, str] = field(default_factory=dict)
    ranges: list[_Range] = field(default_factory=list)

    @property
    def revision_id(self) -> str:
        return self.rev_ids.setdefault(self.revision, f"ALm{secrets.token_urlsafe(18)}")

    def bump(self) -> None:
        self.revision += 1


# --------------------------------------------------------------------------- the fake


class FakeGoogle:
    """In-memory Google token endpoint + Drive v3 + Docs v1 over real HTTP (see module doc)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.files: dict[str, dict[str, Any]] = {}
        self._docs: dict[str, _Doc] = {}
        self._perms: dict[str, list[dict[str, Any]]] = {}
        self._accounts: dict[str, Any] = {}
        self._tokens: dict[str, tuple[str, str]] = {}  # token -> (email, scope)
        self._denied: dict[str, int] = {}
        self._faults: list[_Fault] = []
        self.calls: list[Call] = []
        self.service_account_has_quota = True
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self.token_uri = f"{self.url}/token"

    # -- lifecycle
    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeGoogle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- set-up helpers
    def register_service_account(self, client_email: str, public_key_pem: bytes | str) -> None:
        """Accept JWT assertions from ``client_email`` signed with this key."""
        pem = public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem
        self._accounts[client_email] = serialization.load_pem_public_key(pem)

    def add_folder(
        self, file_id: str, *, shared_drive: bool = False, writable: bool = True, name: str = ""
    ) -> dict[str, Any]:
        """A folder the service account can see (in a shared drive when ``shared_drive``)."""
        with self._lock:
            meta = self._file(file_id, name or f"folder {file_id}", FOLDER_MIME, [])
            meta["capabilities"]["canAddChildren"] = writable
            if shared_drive:
                meta["driveId"] = f"drive-{file_id}"
            return meta

    def add_template(
        self, file_id: str, text: str, *, name: str = "LID template", parent: str | None = None
    ) -> dict[str, Any]:
        """A Google Doc shared with the service account, holding ``text``."""
        with self._lock:
            meta = self._file(file_id, name, DOC_MIME, [parent] if parent else [])
            if parent and self.files[parent].get("driveId"):
                meta["driveId"] = self.files[parent]["driveId"]
            self._docs[file_id] = _Doc(text if text.endswith("\n") else text + "\n")
            return meta

    def deny(self, file_id: str, status: int = 403) -> None:
        """Make every access to ``file_id`` fail (403 insufficient permissions, or 404)."""
        self._denied[file_id] = status

    def inject(
        self,
        pattern: str,
        *,
        status: int | None = 500,
        times: int = 1,
        drop_response: bool = False,
        retry_after: float | None = None,
        reason: str | None = None,
        message: str | None = None,
        action: Callable[[], None] | None = None,
    ) -> None:
        """Fail (or drop, or run ``action`` before) the next ``times`` matching calls."""
        self._faults.append(
            _Fault(
                re.compile(pattern),
                None if drop_response else status,
                times,
                drop_response,
                None if retry_after is None else str(int(retry_after)),
                reason,
                message,
                action,
            )
        )

    def expire_tokens(self) -> None:
        """Forget every issued access token (the next API call answers 401)."""
        self._tokens.clear()

    # -- inspection helpers
    def document_text(self, doc_id: str) -> str:
        """The document's plain text, ending with the body's final newline."""
        return self._docs[doc_id].text

    def edit_document(self, doc_id: str, text: str) -> None:
        """Replace the document text, as a human editing it would (new revision)."""
        with self._lock:
            doc = self._docs[doc_id]
            new = text if text.endswith("\n") else text + "\n"
            ranges = doc.ranges
            matcher = difflib.SequenceMatcher(None, doc.text, new, autojunk=False)
            for op, i1, i2, j1, j2 in reversed(matcher.get_opcodes()):
                if op == "equal":
                    continue
                at = 1 + u16len(doc.text[:i1])
                if i2 > i1:
                    ranges = _after_delete(ranges, at, at + u16len(doc.text[i1:i2]))
                if j2 > j1:
                    ranges = _after_insert(ranges, at, u16len(new[j1:j2]))
            doc.text, doc.ranges = new, ranges
            doc.bump()

    def named_ranges(self, doc_id: str) -> list[tuple[str, str]]:
        """``(name, text)`` of every named range of the document, in document order."""
        doc = self._docs[doc_id]
        encoded = doc.text.encode("utf-16-le")
        return [
            (r.name, encoded[(r.start - 1) * 2 : (r.end - 1) * 2].decode("utf-16-le"))
            for r in sorted(doc.ranges, key=lambda r: (r.start, r.end))
        ]

    def permissions(self, file_id: str) -> list[dict[str, Any]]:
        return [dict(p) for p in self._perms.get(file_id, [])]

    def calls_matching(self, pattern: str) -> list[Call]:
        regex = re.compile(pattern)
        return [c for c in self.calls if regex.search(c.key)]

    # -- internals
    def _file(self, file_id: str, name: str, mime: str, parents: list[str]) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "kind": "drive#file",
            "id": file_id,
            "name": name,
            "mimeType": mime,
            "parents": parents or ["root"],
            "appProperties": {},
            "trashed": False,
            "createdTime": _now(),
            "webViewLink": (
                f"https://drive.google.com/drive/folders/{file_id}"
                if mime == FOLDER_MIME
                else f"https://docs.google.com/document/d/{file_id}/edit?usp=drivesdk"
            ),
            "capabilities": {
                "canAddChildren": mime == FOLDER_MIME,
                "canCopy": True,
                "canEdit": True,
            },
        }
        self.files[file_id] = meta
        self._perms.setdefault(file_id, [])
        return meta

    def _take_fault(self, key: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.used < fault.times and fault.pattern.search(key):
                    fault.used += 1
                    return fault
        return None

    # ---- dispatch
    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], raw_body: bytes
    ) -> tuple[int, Any, dict[str, str], bool]:
        """(status, json body, extra headers, drop) for one request."""
        parts = urlsplit(raw_path)
        path = parts.path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        body: Any = None
        if raw_body:
            ctype = headers.get("content-type", "")
            if ctype.startswith("application/x-www-form-urlencoded"):
                body = dict(parse_qsl(raw_body.decode()))
            else:
                try:
                    body = json.loads(raw_body)
                except ValueError:
                    body = raw_body.decode(errors="replace")
        call = Call(method, path, query, body, headers)
        with self._lock:
            self.calls.append(call)
        fault = self._take_fault(call.key)
        if fault and fault.action:
            fault.action()
        if fault and fault.status is not None:
            if path == "/token":
                return (
                    fault.status,
                    {"error": fault.reason or "internal_failure", "error_description": "injected"},
                    {},
                    False,
                )
            err = ApiError(
                fault.status,
                fault.message or f"Injected error {fault.status}",
                reason=fault.reason,
                headers={"Retry-After": fault.retry_after} if fault.retry_after else {},
            )
            return err.code, err.body(), err.headers, False
        drop = bool(fault and fault.drop_response)
        try:
            if path == "/token" and method == "POST":
                return 200, self._token(body), {"Cache-Control": "no-store"}, drop
            with self._lock:
                status, payload = self._route(method, path, query, body, headers)
            return status, payload, {}, drop
        except OAuthError as exc:
            return exc.code, {"error": exc.error, "error_description": exc.description}, {}, drop
        except ApiError as exc:
            return exc.code, exc.body(), exc.headers, drop

    def _route(
        self, method: str, path: str, query: dict[str, str], body: Any, headers: dict[str, str]
    ) -> tuple[int, Any]:
        routes: list[tuple[str, str, Callable[..., Any], tuple[str, ...]]] = [
            ("POST", r"/drive/v3/files/([^/]+)/copy", self._files_copy, DRIVE_SCOPES),
            ("POST", r"/drive/v3/files/([^/]+)/permissions", self._perm_create, DRIVE_SCOPES),
            ("GET", r"/drive/v3/files/([^/]+)/permissions", self._perm_list, DRIVE_SCOPES),
            ("GET", r"/drive/v3/files/([^/]+)", self._files_get, DRIVE_SCOPES),
            ("POST", r"/drive/v3/files", self._files_create, DRIVE_SCOPES),
            ("GET", r"/drive/v3/files", self._files_list, DRIVE_SCOPES),
            ("POST", r"/v1/documents/([^/:]+):batchUpdate", self._docs_batch, DOCS_SCOPES),
            ("GET", r"/v1/documents/([^/:]+)", self._docs_get, DOCS_SCOPES),
            ("POST", r"/v1/documents", self._docs_create, DOCS_SCOPES),
        ]
        for verb, pattern, fn, scopes in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                self._authorize(headers, scopes)
                args = [unquote(g) for g in match.groups()]
                return 200, fn(*args, query=query, body=body)
        raise ApiError(404, f"The requested URL {path} was not found on this server.")

    # ---- auth
    def _token(self, form: Any) -> dict[str, Any]:
        if not isinstance(form, dict) or form.get("grant_type") != JWT_GRANT:
            raise OAuthError(400, "unsupported_grant_type", "Invalid grant_type.")
        assertion = str(form.get("assertion", ""))
        try:
            head_b64, claims_b64, sig_b64 = assertion.split(".")
            header = json.loads(_b64(head_b64))
            claims = json.loads(_b64(claims_b64))
            signature = _b64(sig_b64)
        except ValueError:
            raise OAuthError(400, "invalid_grant", "Invalid JWT: malformed assertion.") from None
        if header.get("alg") != "RS256":
            raise OAuthError(400, "invalid_grant", "Invalid JWT: alg must be RS256.")
        key = self._accounts.get(claims.get("iss", ""))
        if key is None:
            raise OAuthError(400, "invalid_grant", "Invalid grant: account not found")
        try:
            key.verify(
                signature,
                f"{head_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except Exception:
            raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.") from None
        now = time.time()
        if not (claims.get("iat", 0) - 300 <= now <= claims.get("exp", 0) + 300):
            raise OAuthError(
                400, "invalid_grant", "Invalid JWT: Token must be a short-lived token."
            )
        scope = str(claims.get("scope", ""))
        if not any(s in scope.split() for s in DOCS_SCOPES):
            raise OAuthError(400, "invalid_scope", "Invalid OAuth scope or ID token audience.")
        token = "ya29." + secrets.token_urlsafe(24)
        self._tokens[token] = (claims["iss"], scope)
        return {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}

    def _authorize(self, headers: dict[str, str], scopes: tuple[str, ...]) -> str:
        auth = headers.get("authorization", "")
        entry = self._tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if entry is None:
            raise ApiError(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
                reason="authError",
            )
        email, granted = entry
        if not any(s in granted.split() for s in scopes):
            raise ApiError(
                403,
                "Request had insufficient authentication scopes.",
                reason="insufficientPermissions",
            )
        return email

    # ---- drive
    def _visible(
        self, file_id: str, query: dict[str, str], *, write: bool = False
    ) -> dict[str, Any]:
        meta = self.files.get(file_id)
        all_drives = query.get("supportsAllDrives") == "true"
        if meta is None or meta.get("trashed") or (meta.get("driveId") and not all_drives):
            raise ApiError(404, f"File not found: {file_id}.", reason="notFound")
        denied = self._denied.get(file_id)
        if denied == 404:
            raise ApiError(404, f"File not found: {file_id}.", reason="notFound")
        if denied:
            raise ApiError(
                denied,
                f"The user does not have sufficient permissions for file {file_id}.",
                reason="insufficientFilePermissions",
            )
        if write and not meta["capabilities"].get("canEdit", True):
            raise ApiError(
                403,
                f"The user does not have sufficient permissions for file {file_id}.",
                reason="insufficientFilePermissions",
            )
        return meta

    def _parents(self, body: dict[str, Any], query: dict[str, str]) -> tuple[list[str], str | None]:
        parents = list(body.get("parents") or [])
        drive_id = None
        for parent in parents:
            folder = self._visible(parent, query)
            if folder["mimeType"] != FOLDER_MIME or not folder["capabilities"]["canAddChildren"]:
                raise ApiError(
                    403,
                    f"The user does not have sufficient permissions for file {parent}.",
                    reason="insufficientFilePermissions",
                )
            drive_id = folder.get("driveId") or drive_id
        if drive_id is None and not self.service_account_has_quota:
            raise ApiError(
                403,
                "Service Accounts do not have storage quota. Leverage shared drives, or use "
                "OAuth delegation instead.",
                reason="storageQuotaExceeded",
            )
        return parents, drive_id

    def _respond_file(self, meta: dict[str, Any], query: dict[str, str], default: str) -> Any:
        return _select(meta, _parse_fields(query.get("fields") or default))

    def _files_copy(self, file_id: str, *, query: dict[str, str], body: Any) -> Any:
        body = body or {}
        validate_body("drive.v3", "File", body)
        source = self._visible(file_id, query)
        parents, drive_id = self._parents(body, query)
        new_id = _new_id()
        meta = self._file(
            new_id, body.get("name") or f"Copy of {source['name']}", source["mimeType"], parents
        )
        meta["appProperties"] = {
            k: v for k, v in (body.get("appProperties") or {}).items() if v is not None
        }
        if drive_id:
            meta["driveId"] = drive_id
        if file_id in self._docs:
            source_doc = self._docs[file_id]
            self._docs[new_id] = _Doc(
                source_doc.text,
                ranges=[
                    _Range(_named_range_id(), r.name, r.start, r.end) for r in source_doc.ranges
                ],
            )
        return self._respond_file(meta, query, "kind,id,name,mimeType")

    def _files_create(self, *, query: dict[str, str], body: Any) -> Any:
        body = body or {}
        validate_body("drive.v3", "File", body)
        mime = body.get("mimeType")
        if mime not in (DOC_MIME, FOLDER_MIME):
            raise ApiError(400, "FakeGoogle only creates Google Docs and folders (no media).")
        parents, drive_id = self._parents(body, query)
        new_id = _new_id()
        meta = self._file(new_id, body.get("name") or "Untitled", mime, parents)
        meta["appProperties"] = dict(body.get("appProperties") or {})
        if drive_id:
            meta["driveId"] = drive_id
        if mime == DOC_MIME:
            self._docs[new_id] = _Doc()
        return self._respond_file(meta, query, "kind,id,name,mimeType")

    def _files_get(self, file_id: str, *, query: dict[str, str], body: Any) -> Any:
        return self._respond_file(self._visible(file_id, query), query, "kind,id,name,mimeType")

    _APP_PROP = re.compile(
        r"appProperties\s+has\s+\{\s*key\s*=\s*'((?:[^'\\]|\\.)*)'\s+and\s+"
        r"value\s*=\s*'((?:[^'\\]|\\.)*)'\s*\}"
    )

    def _files_list(self, *, query: dict[str, str], body: Any) -> Any:
        q = query.get("q", "")
        filters: list[Callable[[dict[str, Any]], bool]] = []
        rest = q
        for match in self._APP_PROP.finditer(q):
            key, value = (re.sub(r"\\(.)", r"\1", g) for g in match.groups())
            filters.append(lambda m, k=key, v=value: m["appProperties"].get(k) == v)
            rest = rest.replace(match.group(0), "")
        for clause in (c.strip() for c in re.split(r"\band\b", rest)):
            if not clause:
                continue
            if re.fullmatch(r"trashed\s*=\s*false", clause):
                filters.append(lambda m: not m["trashed"])
            elif m := re.fullmatch(r"'((?:[^'\\]|\\.)*)'\s+in\s+parents", clause):
                parent = re.sub(r"\\(.)", r"\1", m.group(1))
                filters.append(lambda meta, p=parent: p in meta["parents"])
            else:
                raise ApiError(400, "Invalid Value", reason="invalid")
        include_shared = (
            query.get("includeItemsFromAllDrives") == "true"
            and query.get("supportsAllDrives") == "true"
        )
        if (
            query.get("includeItemsFromAllDrives") == "true"
            and query.get("supportsAllDrives") != "true"
        ):
            raise ApiError(
                403,
                "The includeItemsFromAllDrives parameter can only be set to true when "
                "supportsAllDrives is also set to true.",
                reason="teamDrivesParameterNotSupported",
            )
        if query.get("corpora") == "drive" and not query.get("driveId"):
            raise ApiError(400, "The driveId parameter must be specified.", reason="invalid")
        found = []
        for meta in sorted(self.files.values(), key=lambda m: m["createdTime"]):
            if meta["mimeType"] == FOLDER_MIME or meta["id"] in self._denied:
                continue
            if meta.get("driveId") and not include_shared:
                continue
            if query.get("corpora") == "drive" and meta.get("driveId") != query.get("driveId"):
                continue
            if all(f(meta) for f in filters):
                found.append(meta)
        result = {"kind": "drive#fileList", "incompleteSearch": False, "files": found}
        return _select(
            result,
            _parse_fields(
                query.get("fields") or "kind,incompleteSearch,files(kind,id,name,mimeType)"
            ),
        )

    def _perm_create(self, file_id: str, *, query: dict[str, str], body: Any) -> Any:
        validate_body("drive.v3", "Permission", body)
        self._visible(file_id, query, write=True)
        kind, role = body.get("type"), body.get("role")
        if not kind or not role:
            raise ApiError(
                400, "The permission type and role fields are required.", reason="required"
            )
        if kind in ("user", "group") and not body.get("emailAddress"):
            raise ApiError(400, "The permission emailAddress field is required.", reason="required")
        if kind == "domain" and not body.get("domain"):
            raise ApiError(400, "The permission domain field is required.", reason="required")
        who = (body.get("emailAddress") or body.get("domain") or "").lower()
        perms = self._perms.setdefault(file_id, [])
        for perm in perms:
            if (
                perm["type"] == kind
                and (perm.get("emailAddress") or perm.get("domain") or "").lower() == who
            ):
                perm["role"] = role  # Drive answers the existing permission, role updated
                return self._respond_perm(perm, query)
        perm = {"kind": "drive#permission", "id": secrets.token_hex(8), "type": kind, "role": role}
        for key in ("emailAddress", "domain", "allowFileDiscovery"):
            if key in body:
                perm[key] = body[key]
        perm["notified"] = query.get("sendNotificationEmail", "true") != "false"
        perms.append(perm)
        return self._respond_perm(perm, query)

    def _respond_perm(self, perm: dict[str, Any], query: dict[str, str]) -> Any:
        public = {k: v for k, v in perm.items() if k != "notified"}
        return _select(public, _parse_fields(query.get("fields") or "kind,id,type,role"))

    def _perm_list(self, file_id: str, *, query: dict[str, str], body: Any) -> Any:
        self._visible(file_id, query)
        public = [{k: v for k, v in p.items() if k != "notified"} for p in self._perms[file_id]]
        result = {"kind": "drive#permissionList", "permissions": public}
        return _select(
            result, _parse_fields(query.get("fields") or "kind,permissions(kind,id,type,role)")
        )

    # ---- docs
    def _doc(self, doc_id: str) -> _Doc:
        meta = self.files.get(doc_id)
        if meta is None or doc_id not in self._docs or meta.get("trashed"):
            raise ApiError(404, "Requested entity was not found.", reason="notFound")
        denied = self._denied.get(doc_id)
        if denied:
            raise ApiError(
                denied,
                "The caller does not have permission"
                if denied == 403
                else "Requested entity was not found.",
                reason="forbidden" if denied == 403 else "notFound",
            )
        return self._docs[doc_id]

    def _docs_create(self, *, query: dict[str, str], body: Any) -> Any:
        validate_body("docs.v1", "Document", body or {})
        new_id = _new_id()
        self._file(new_id, (body or {}).get("title") or "Untitled document", DOC_MIME, [])
        self._docs[new_id] = _Doc()
        return self._document(new_id)

    def _docs_get(self, doc_id: str, *, query: dict[str, str], body: Any) -> Any:
        self._doc(doc_id)
        fields = query.get("fields")
        document = self._document(doc_id)
        return _select(document, _parse_fields(fields)) if fields else document

    def _document(self, doc_id: str) -> dict[str, Any]:
        doc = self._docs[doc_id]
        content: list[dict[str, Any]] = [
            {"endIndex": 1, "sectionBreak": {"sectionStyle": {"sectionType": "CONTINUOUS"}}}
        ]
        index = 1
        for line in doc.text.splitlines(keepends=True):
            end = index + u16len(line)
            content.append(
                {
                    "startIndex": index,
                    "endIndex": end,
                    "paragraph": {
                        "elements": [
                            {
                                "startIndex": index,
                                "endIndex": end,
                                "textRun": {"content": line, "textStyle": {}},
                            }
                        ],
                        "paragraphStyle": {
                            "namedStyleType": "NORMAL_TEXT",
                            "direction": "LEFT_TO_RIGHT",
                        },
                    },
                }
            )
            index = end
        document: dict[str, Any] = {
            "documentId": doc_id,
            "title": self.files[doc_id]["name"],
            "body": {"content": content},
            "revisionId": doc.revision_id,
            "suggestionsViewMode": "SUGGESTIONS_INLINE",
        }
        named: dict[str, Any] = {}
        for r in sorted(doc.ranges, key=lambda r: (r.start, r.end)):
            group = named.setdefault(r.name, {"name": r.name, "namedRanges": []})
            group["namedRanges"].append(
                {
                    "namedRangeId": r.id,
                    "name": r.name,
                    "ranges": [{"startIndex": r.start, "endIndex": r.end}],
                }
            )
        if named:
            document["namedRanges"] = named
        return document

    def _docs_batch(self, doc_id: str, *, query: dict[str, str], body: Any) -> Any:
        validate_body("docs.v1", "BatchUpdateDocumentRequest", body)
        doc = self._doc(doc_id)
        write_control = body.get("writeControl") or {}
        required = write_control.get("requiredRevisionId")
        if required is not None and required != doc.revision_id:
            raise ApiError(
                400,
                f"The required revision ID '{required}' does not match the latest revision "
                "of the document.",
                reason="failedPrecondition",
                status="FAILED_PRECONDITION",
            )
        requests = body.get("requests") or []
        if not requests:
            raise ApiError(400, "Must specify at least one request.")
        text, ranges = doc.text, list(doc.ranges)
        replies: list[dict[str, Any]] = []
        for n, request in enumerate(requests):
            if len(request) != 1:
                raise ApiError(
                    400, f"Invalid requests[{n}]: exactly one kind of request must be set."
                )
            kind, spec = next(iter(request.items()))
            try:
                text, ranges, reply = self._apply(text, ranges, kind, spec)
            except ValueError as exc:
                raise ApiError(400, f"Invalid requests[{n}].{kind}: {exc}") from None
            replies.append(reply)
        if text != doc.text or ranges != doc.ranges:
            doc.text, doc.ranges = text, ranges
            doc.bump()
        return {
            "documentId": doc_id,
            "replies": replies,
            "writeControl": {"requiredRevisionId": doc.revision_id},
        }

    @staticmethod
    def _replace_at(
        text: str, ranges: list[_Range], start: int, stop: int, insert: str
    ) -> tuple[str, list[_Range]]:
        """Delete ``[start, stop)`` then insert ``insert`` at ``start`` (indices in UTF-16)."""
        a, b = _py_index(text, start - 1), _py_index(text, stop - 1)
        if stop > start:
            ranges = _after_delete(ranges, start, stop)
        if insert:
            ranges = _after_insert(ranges, start, u16len(insert))
        return text[:a] + insert + text[b:], ranges

    def _apply(
        self, text: str, ranges: list[_Range], kind: str, spec: dict[str, Any]
    ) -> tuple[str, list[_Range], dict[str, Any]]:
        end = 1 + u16len(text)  # segment end index (after the final newline)
        if kind in ("createNamedRange", "deleteNamedRange", "replaceNamedRangeContent"):
            return self._apply_named(text, ranges, kind, spec)
        for key in ("location", "endOfSegmentLocation", "range"):
            if (spec.get(key) or {}).get("segmentId"):
                raise ValueError("FakeGoogle supports the document body only (no segmentId).")
        if kind == "replaceAllText":
            match = spec.get("containsText") or {}
            needle = match.get("text") or ""
            if not needle:
                raise ValueError("containsText.text must not be empty.")
            if match.get("searchByRegex"):
                raise ValueError("FakeGoogle does not support searchByRegex.")
            flags = 0 if match.get("matchCase") else re.IGNORECASE
            pattern = re.compile(re.escape(needle), flags)
            replacement = spec.get("replaceText") or ""
            matches = list(pattern.finditer(text))
            for m in reversed(matches):
                start = 1 + u16len(text[: m.start()])
                text, ranges = self._replace_at(
                    text, ranges, start, start + u16len(m.group(0)), replacement
                )
            reply: dict[str, Any] = {"occurrencesChanged": len(matches)} if matches else {}
            return text, ranges, {"replaceAllText": reply}
        if kind == "insertText":
            insert = spec.get("text") or ""
            has_loc, has_end = "location" in spec, "endOfSegmentLocation" in spec
            if has_loc == has_end:
                raise ValueError("exactly one of location and endOfSegmentLocation must be set.")
            if has_end:
                at = len(text) - 1
            else:
                index = int(spec["location"].get("index", 0))
                if index < 1:
                    raise ValueError(
                        "The insertion index must be inside the bounds of an existing paragraph."
                    )
                if index >= end:
                    raise ValueError(
                        f"Index {index} must be less than the end index of the referenced segment, {end}."
                    )
                at = _py_index(text, index - 1)
            location = 1 + u16len(text[:at])
            return (
                text[:at] + insert + text[at:],
                _after_insert(ranges, location, u16len(insert)),
                {},
            )
        if kind == "deleteContentRange":
            rng = spec.get("range") or {}
            start, stop = int(rng.get("startIndex", 0)), int(rng.get("endIndex", 0))
            if start < 1 or stop <= start:
                raise ValueError("The range must be non-empty and start at index 1 or later.")
            if stop >= end:
                raise ValueError(
                    "The range cannot include the newline character at the end of the segment."
                )
            a, b = _py_index(text, start - 1), _py_index(text, stop - 1)
            return text[:a] + text[b:], _after_delete(ranges, start, stop), {}
        if kind in ("updateParagraphStyle", "deleteParagraphBullets"):
            rng = spec.get("range") or {}
            start, stop = int(rng.get("startIndex", 0)), int(rng.get("endIndex", 0))
            if start < 1 or stop <= start or stop > end:
                raise ValueError("Invalid range.")
            if kind == "updateParagraphStyle" and not spec.get("fields"):
                raise ValueError("fields is required.")
            return text, ranges, {}
        raise ValueError(f"FakeGoogle does not implement {kind}.")

    def _apply_named(
        self, text: str, ranges: list[_Range], kind: str, spec: dict[str, Any]
    ) -> tuple[str, list[_Range], dict[str, Any]]:
        end = 1 + u16len(text)
        if kind == "createNamedRange":
            name = spec.get("name") or ""
            if not 1 <= u16len(name) <= 256:
                raise ValueError("The name must be between 1 and 256 UTF-16 code units long.")
            rng = spec.get("range") or {}
            start, stop = int(rng.get("startIndex", 0)), int(rng.get("endIndex", 0))
            if start < 1 or stop <= start or stop > end:
                raise ValueError("The range must be non-empty and inside the document body.")
            _py_index(text, start - 1), _py_index(text, stop - 1)  # no split surrogate pair
            new = _Range(_named_range_id(), name, start, stop)
            return text, [*ranges, new], {"createNamedRange": {"namedRangeId": new.id}}
        by_id = spec.get("namedRangeId")
        by_name = spec.get("name") if kind == "deleteNamedRange" else spec.get("namedRangeName")
        if (by_id is None) == (by_name is None):
            raise ValueError("exactly one of the named range id and name must be set.")
        chosen = [r for r in ranges if (r.id == by_id if by_id is not None else r.name == by_name)]
        if not chosen and by_id is not None:  # by name, no match is a no-op (discovery doc)
            raise ValueError(f"The named range with id '{by_id}' does not exist.")
        if kind == "deleteNamedRange":
            return text, [r for r in ranges if r not in chosen], {}
        replacement = spec.get("text")
        if replacement is None:
            raise ValueError("text must be set.")
        for target in sorted(chosen, key=lambda r: r.start, reverse=True):
            current = next(r for r in ranges if r.id == target.id)
            others = [r for r in ranges if r.id != target.id]
            text, others = self._replace_at(text, others, current.start, current.end, replacement)
            if replacement:
                kept = _Range(
                    current.id, current.name, current.start, current.start + u16len(replacement)
                )
                others.append(kept)
            ranges = others
        return text, ranges, {}


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ESF"
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls on keep-alive connections

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        fake: FakeGoogle = self.server.fake  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, payload, extra, drop = fake.handle(self.command, self.path, headers, raw)
        if drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve


def make_service_account(
    fake: FakeGoogle, client_email: str = "imas-bot@imas-test.iam.gserviceaccount.com"
) -> dict[str, Any]:
    """A fresh RSA key registered with ``fake``; returns the service-account JSON as a dict."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fake.register_service_account(client_email, public_pem)
    return {
        "type": "service_account",
        "project_id": "imas-test",
        "private_key_id": secrets.token_hex(20),
        "private_key": private_pem,
        "client_email": client_email,
        "client_id": str(secrets.randbits(64)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": fake.token_uri,
    }
