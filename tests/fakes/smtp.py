"""A local SMTP inbox: aiosmtpd with AUTH (LOGIN/PLAIN) and STARTTLS or implicit TLS,
certificates from a throw-away trustme CA.

    inbox = SmtpInbox("imas", "s3cret")          # STARTTLS required before AUTH/MAIL
    inbox.start()
    ...EMAIL provider config: host=inbox.host, port=inbox.port, ca_file=inbox.ca_file...
    inbox.messages[0]["Subject"]; inbox.envelopes[0].rcpt_tos; inbox.stop()

``implicit_tls=True`` serves TLS from the first byte (``use_ssl``);
``offer_starttls=False`` is a plain-text server that does not advertise STARTTLS (and
accepts AUTH without TLS). Scripted failures:
``inbox.rcpt_replies[address] = "450 4.2.1 mailbox busy"`` refuses that recipient;
``inbox.data_reply = "451 4.3.0 try later"`` refuses the DATA.
"""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import tempfile
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Envelope:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    login: str | None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Handler:
    def __init__(self, inbox: SmtpInbox) -> None:
        self.inbox = inbox

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        reply = self.inbox.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.inbox.data_reply:
            return self.inbox.data_reply
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode()
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        message = email.message_from_bytes(content, policy=email.policy.default)
        with self.inbox.lock:
            self.inbox.envelopes.append(
                Envelope(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    content,
                    session.ssl is not None or self.inbox.implicit_tls,
                    login,
                )
            )
            self.inbox.messages.append(message)
        return "250 OK"


class SmtpInbox:
    """An SMTP server on 127.0.0.1 collecting the messages it accepts."""

    def __init__(
        self,
        username: str = "imas",
        password: str = "smtp-secret",
        *,
        require_starttls: bool = True,
        implicit_tls: bool = False,
        offer_starttls: bool = True,
        require_auth: bool = True,
    ) -> None:
        self.username = username
        self.password = password
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Envelope] = []
        self.rcpt_replies: dict[str, str] = {}
        self.data_reply: str | None = None
        self.lock = threading.Lock()
        self.host = "127.0.0.1"
        self.port = free_port()

        self.ca = trustme.CA()
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
        self._tmp = tempfile.TemporaryDirectory(prefix="imas-smtp-")
        self.ca_file = str(Path(self._tmp.name) / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)

        kwargs: dict[str, Any] = {
            "authenticator": self._authenticate,
            "auth_required": require_auth,
            "auth_require_tls": require_starttls or implicit_tls,
        }
        self.implicit_tls = implicit_tls
        if implicit_tls:
            # the whole connection is TLS; aiosmtpd only counts STARTTLS as "TLS"
            kwargs["ssl_context"] = server_ctx
            kwargs["auth_require_tls"] = False
        elif not offer_starttls:
            kwargs["auth_require_tls"] = False
        else:
            kwargs["tls_context"] = server_ctx
            kwargs["require_starttls"] = require_starttls
        self.controller = Controller(_Handler(self), hostname=self.host, port=self.port, **kwargs)

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if mechanism not in ("LOGIN", "PLAIN") or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = (
            auth_data.login.decode() == self.username
            and auth_data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def start(self) -> SmtpInbox:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
        self._tmp.cleanup()

    def __enter__(self) -> SmtpInbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
