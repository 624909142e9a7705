"""A local HTTP receiver for every outbound webhook (Discord, Teams, PagerDuty, Opsgenie,
ntfy, OVH, generic webhooks).

``HttpRecorder`` is a ``ThreadingHTTPServer`` on ``127.0.0.1:<random port>`` that records
every request (method, path, query, headers, body bytes, decoded JSON) and answers with
per-path scripted replies, consumed in order, then the path's default (200 ``{}`` unless
set with ``recorder.default(path, ...)``)::

    with HttpRecorder() as rec:
        rec.script("/v2/enqueue", [(500, {}, "boom"), Reply(hang=3), Reply(drop=True)])
        rec.default("/v2/enqueue", Reply(202, body={"status": "success"}))
        url = rec.url("/v2/enqueue")

A script step is a ``Reply`` or a ``(status, headers, body)`` tuple. ``Reply(hang=s)``
waits ``s`` seconds before answering (released early by ``stop()``), to test client
timeouts; ``Reply(drop=True)`` records the request then closes the connection without a
response (a lost response). It validates nothing: tests validate what was recorded.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    """One scripted answer. ``body``: bytes, str, or a JSON-able object (sent as JSON)."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = b"{}"
    hang: float = 0.0
    drop: bool = False

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        body = self.body
        if isinstance(body, bytes):
            data = body
            headers.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            data = body.encode()
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        else:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        return data, headers


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # keys lower-cased
    body: bytes
    raw_path: str

    @property
    def json(self) -> Any:
        """The body decoded as JSON (None when empty or not JSON)."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def _as_reply(step: Reply | tuple[int, Mapping[str, str], Any]) -> Reply:
    if isinstance(step, Reply):
        return step
    status, headers, body = step
    return Reply(status=status, headers=headers, body=body)


class HttpRecorder:
    """Records requests and answers with scripted replies (see module docstring)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[RecordedRequest] = []
        self._scripts: dict[str, list[Reply]] = {}
        self._defaults: dict[str, Reply] = {}
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                recorded = RecordedRequest(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    raw_path=self.path,
                )
                reply = recorder._next_reply(parts.path)
                with recorder._cond:
                    recorder.requests.append(recorded)
                    recorder._cond.notify_all()
                if reply.drop:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if reply.hang:
                    recorder._stopping.wait(reply.hang)
                data, headers = reply.encoded()
                try:
                    self.send_response(reply.status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                except OSError:
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # lifecycle

    def start(self) -> HttpRecorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HttpRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # addresses

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    # behaviour

    def script(
        self, path: str, steps: Iterable[Reply | tuple[int, Mapping[str, str], Any]]
    ) -> None:
        """Replies for the next requests to ``path``, consumed in order."""
        with self._cond:
            self._scripts.setdefault(path, []).extend(_as_reply(s) for s in steps)

    def default(self, path: str, reply: Reply | tuple[int, Mapping[str, str], Any]) -> None:
        """Reply for ``path`` once its script is exhausted."""
        with self._cond:
            self._defaults[path] = _as_reply(reply)

    def _next_reply(self, path: str) -> Reply:
        with self._cond:
            steps = self._scripts.get(path)
            if steps:
                return steps.pop(0)
            return self._defaults.get(path, Reply())

    # inspection

    def requests_for(self, path: str) -> list[RecordedRequest]:
        with self._cond:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, path: str, n: int = 1, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until ``n`` requests to ``path`` were recorded; AssertionError on timeout."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: len([r for r in self.requests if r.path == path]) >= n, timeout
            )
            found = [r for r in self.requests if r.path == path]
        if not ok:
            raise AssertionError(f"expected {n} request(s) to {path}, got {len(found)}")
        return found
