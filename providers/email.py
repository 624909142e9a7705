"""EMAIL: SMTP delivery of a multipart/alternative (plain text + HTML) message.

Config keys:

* ``host`` (required), ``port`` (default 587);
* ``username`` / ``password`` (secret) - both or neither; AUTH happens only when set;
* ``use_tls`` (default true): STARTTLS after EHLO; refuses to continue if the server does
  not offer it;
* ``use_ssl`` (default false): implicit TLS from the first byte (port 465). When true,
  ``use_tls`` is ignored (the connection is already encrypted);
* ``from_email`` (required): an address, or ``Name <address>``;
* ``timeout`` (default 10 s): socket timeout for connect and every SMTP command;
* ``recipients`` (optional): addresses for recipient kind ``default``; with none, the
  provider has no default destination and only delivers to ``email`` recipients (routing
  rules, team and impact-scope mailboxes);
* ``ca_file`` (optional): PEM file of CA certificates to trust instead of the system
  store (a private relay's CA; the tests point it at a throw-away trustme CA).

Recipient kinds: ``email`` (``Recipient.address``) and ``default`` (all ``recipients`` in
one message).

Idempotency and threading: the ``Message-ID`` is derived from ``idempotency_key``
(``<imas.<key>.<hash>@<from domain>>``), so a retry after a lost ``250`` sends a copy with
the same Message-ID that mail clients and archives can fold. The first message of an
incident returns its Message-ID in ``DeliveryResult.data["message_id"]``; later sends get it
back as ``prior`` and set ``In-Reply-To``/``References`` so clients thread them. Delivery is
at-least-once (SMTP has no dedup), so ``supports_dedup`` is False.

Address guard: the SMTP host goes through the same guard as every HTTP call
(``providers.guard``): resolved once, every address checked, the connection made to the
checked address (STARTTLS / implicit TLS still verify the configured host name). A relay
on a private network needs ``allow_private_targets: true`` or ``allowed_hosts: [relay:587]``
in this provider's config (or ``IMAS_ALLOW_PRIVATE_WEBHOOK_TARGETS=true``).

Escaping: the message is built with ``email.message.EmailMessage`` (``email.policy.default``),
which folds and RFC 2047-encodes header values; the ``Subject`` (the summary line) and the
``X-IMAS-*`` values are one line without control characters
(:func:`providers.text.one_line`), so a title containing CR/LF cannot add a header. The
HTML part ``html.escape``-s every user string (:func:`providers.messages.html_body`).

Errors (never containing the password):

* SMTPAuthenticationError -> PermanentProviderError (hint: check username/password),
  except a 4xx reply such as ``454 temporary authentication failure`` -> Retryable;
* SMTPRecipientsRefused -> PermanentProviderError, unless every refusal is a 4xx reply
  (greylisting, mailbox busy) -> Retryable;
* other SMTP replies: 4xx -> RetryableProviderError, 5xx -> PermanentProviderError;
* connection refused/reset, disconnects, timeouts -> RetryableProviderError;
* certificate verification failure, STARTTLS or AUTH not offered -> PermanentProviderError.

A message partly refused (some recipients accepted) is a success: retrying would send
duplicates to the accepted ones. The refused addresses are in the detail and in
``data["refused"]``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import smtplib
import socket
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any, cast

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from bot.domain.errors import PermanentProviderError, ProviderError, RetryableProviderError
from providers.base import (
    CheckResult,
    DeliveryResult,
    Notification,
    NotificationProvider,
    ProviderConfig,
    Recipient,
)
from providers.guard import AddressPolicy, TargetRefused
from providers.messages import html_body, summary_line, text_body
from providers.text import one_line

log = logging.getLogger(__name__)

_ADDRESS = re.compile(r"^[^@\s<>,;:\"]+@[^@\s<>,;:\"]+\.[^@\s<>,;:\"]+$|^[^@\s<>,;:\"]+@localhost$")
_MSGID_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
AUTH_HINT = "check the SMTP username/password"


def is_address(value: str) -> bool:
    """True for a bare e-mail address (no display name, no whitespace)."""
    return bool(_ADDRESS.match(value))


def message_id_for(idempotency_key: str, from_email: str) -> str:
    """Deterministic ``Message-ID`` for ``idempotency_key`` (same key, same id)."""
    safe = _MSGID_SAFE.sub("-", idempotency_key).strip("-.")[:64] or "n"
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:12]
    domain = parseaddr(from_email)[1].rpartition("@")[2] or "imas.invalid"
    return f"<imas.{safe}.{digest}@{domain}>"


class EmailConfig(ProviderConfig):
    """EMAIL config; see the module docstring for every key."""

    model_config = ConfigDict(hide_input_in_errors=True)  # inputs may be secrets

    host: str = Field(min_length=1)
    port: int = Field(587, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    use_tls: bool = True
    use_ssl: bool = False
    from_email: str
    timeout: float = Field(10.0, gt=0, le=300)
    recipients: list[str] = Field(default_factory=list)
    ca_file: str | None = None

    @field_validator("from_email")
    @classmethod
    def _from(cls, value: str) -> str:
        if "\n" in value or "\r" in value or not is_address(parseaddr(value)[1]):
            raise ValueError("must be an e-mail address, optionally 'Name <address>'")
        return value.strip()

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        cleaned = [v.strip() for v in value]
        bad = [v for v in cleaned if not is_address(v)]
        if bad:
            raise ValueError(f"not e-mail addresses: {', '.join(bad)}")
        return cleaned

    @model_validator(mode="after")
    def _credentials(self) -> EmailConfig:
        if bool(self.username) != bool(self.password and self.password.get_secret_value()):
            raise ValueError("username and password must be given together")
        return self


def _reply_error(code: int, text: str, hint: str | None = None) -> ProviderError:
    if 400 <= code < 500:
        return RetryableProviderError(text, code=f"SMTP {code}", hint=hint)
    return PermanentProviderError(text, code=f"SMTP {code}", hint=hint)


def _decode(raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    return raw


class PinnedSMTP(smtplib.SMTP):
    """``smtplib.SMTP`` connecting to a checked address whatever the host name says (the
    name still goes to STARTTLS for SNI and the certificate check)."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        self.pinned_address = address
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((self.pinned_address, port), timeout, self.source_address)


class PinnedSMTPSSL(smtplib.SMTP_SSL):
    """``smtplib.SMTP_SSL`` connecting to a checked address (TLS verifies the host name)."""

    def __init__(
        self, host: str, port: int, *, address: str, timeout: float, context: ssl.SSLContext
    ) -> None:
        self.pinned_address = address
        self.tls_hostname = host
        super().__init__(host, port, timeout=timeout, context=context)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = socket.create_connection((self.pinned_address, port), timeout, self.source_address)
        return self.context.wrap_socket(sock, server_hostname=self.tls_hostname)


def _close(smtp: smtplib.SMTP, *, polite: bool) -> None:
    """QUIT after success; after a failure just drop the socket (no second timeout)."""
    if polite:
        try:
            smtp.quit()
            return
        except (smtplib.SMTPException, OSError):
            pass
    smtp.close()


class EmailProvider(NotificationProvider):
    """Sends text+HTML e-mail over SMTP (recipient kinds ``email`` and ``default``)."""

    type = "EMAIL"
    config_model = EmailConfig
    recipient_kinds = frozenset({"email", "default"})
    supports_dedup = False
    secret_keys = frozenset({"password"})

    @property
    def settings(self) -> EmailConfig:
        return cast(EmailConfig, self.config)

    @classmethod
    def refused_targets(
        cls, config: ProviderConfig, policy: AddressPolicy
    ) -> list[tuple[str, TargetRefused]]:
        cfg = cast(EmailConfig, config)
        policy = policy.widened(
            allow_private=cfg.allow_private_targets, allowed_hosts=cfg.allowed_hosts
        )
        try:
            policy.check_host(cfg.host, cfg.port)
        except TargetRefused as exc:
            return [("host", exc)]
        return []

    def default_recipients(self) -> list[Recipient]:
        """``default`` only when ``recipients`` is configured."""
        return [Recipient("default")] if self.settings.recipients else []

    # --- building -------------------------------------------------------------------

    def build_message(
        self,
        notification: Notification,
        to: list[str],
        *,
        idempotency_key: str,
        prior: Mapping[str, Any] | None = None,
    ) -> EmailMessage:
        """The MIME message (multipart/alternative) for ``notification``."""
        cfg = self.settings
        msg = EmailMessage()
        msg["Subject"] = one_line(summary_line(notification))
        msg["From"] = cfg.from_email
        msg["To"] = ", ".join(to)
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = message_id_for(idempotency_key, cfg.from_email)
        first = prior.get("message_id") if prior else None
        if isinstance(first, str) and first:
            msg["In-Reply-To"] = first
            msg["References"] = first
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-IMAS-Incident"] = one_line(notification.incident.short_id)
        msg["X-IMAS-Event"] = one_line(notification.event)
        msg.set_content(text_body(notification))
        msg.add_alternative(html_body(notification), subtype="html")
        return msg

    def _recipients_for(self, recipient: Recipient) -> list[str]:
        if recipient.kind == "email":
            address = recipient.address.strip()
            if not is_address(address):
                raise PermanentProviderError(
                    f"EMAIL provider {self.name!r}: invalid recipient address {address!r}"
                )
            return [address]
        if recipient.kind == "default":
            if not self.settings.recipients:
                raise PermanentProviderError(
                    f"EMAIL provider {self.name!r} has no default recipients",
                    hint="set the provider's 'recipients' config key",
                )
            return list(self.settings.recipients)
        raise PermanentProviderError(
            f"EMAIL provider {self.name!r} cannot deliver to recipient kind {recipient.kind!r}"
        )

    # --- SMTP -----------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        """TLS context: system CAs, or ``ca_file`` when configured."""
        return ssl.create_default_context(cafile=self.settings.ca_file)

    @contextmanager
    def _session(self) -> Iterator[smtplib.SMTP]:
        """Connected (and TLS-protected, logged-in) SMTP session, errors classified."""
        cfg = self.settings
        where = f"{cfg.host}:{cfg.port}"
        smtp: smtplib.SMTP | None = None
        ok = False
        try:
            try:
                context = self.ssl_context()
            except (OSError, ssl.SSLError) as exc:
                raise PermanentProviderError(
                    f"cannot load ca_file for SMTP {where}: {type(exc).__name__}",
                    hint="check the provider's ca_file path",
                ) from None
            target = self.http.policy.resolve_host(cfg.host, cfg.port)
            if cfg.use_ssl:
                smtp = PinnedSMTPSSL(
                    cfg.host,
                    cfg.port,
                    address=target.address,
                    timeout=cfg.timeout,
                    context=context,
                )
            else:
                smtp = PinnedSMTP(cfg.host, cfg.port, address=target.address, timeout=cfg.timeout)
                smtp.ehlo()
                if cfg.use_tls:
                    if not smtp.has_extn("starttls"):
                        raise PermanentProviderError(
                            f"SMTP server {where} does not offer STARTTLS",
                            code="starttls_unavailable",
                            hint="use use_ssl for implicit TLS, or use_tls: false only on a "
                            "trusted network",
                        )
                    smtp.starttls(context=context)
                    smtp.ehlo()
            if cfg.username and cfg.password:
                smtp.login(cfg.username, cfg.password.get_secret_value())
            yield smtp
            ok = True
        except ProviderError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise _reply_error(
                exc.smtp_code,
                f"SMTP {where} rejected the login: {exc.smtp_code} {_decode(exc.smtp_error)}",
                AUTH_HINT,
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            refused = ", ".join(f"{a} ({c})" for a, (c, _) in exc.recipients.items())
            text = f"SMTP {where} refused every recipient: {refused}"
            if codes and all(400 <= c < 500 for c in codes):
                raise RetryableProviderError(text, code=f"SMTP {codes[0]}") from None
            raise PermanentProviderError(
                text,
                code=f"SMTP {codes[0]}" if codes else None,
                hint="check the recipient addresses",
            ) from None
        except smtplib.SMTPResponseException as exc:  # sender refused, data error, connect
            raise _reply_error(
                exc.smtp_code, f"SMTP {where} answered {exc.smtp_code} {_decode(exc.smtp_error)}"
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentProviderError(
                f"SMTP {where}: {exc}",
                code="smtp_extension_unavailable",
                hint="the server does not offer AUTH here; many servers offer it only after "
                "STARTTLS (use_tls: true) or on the implicit-TLS port (use_ssl: true)",
            ) from None
        except smtplib.SMTPServerDisconnected as exc:
            # smtplib reports a read timeout as "Connection unexpectedly closed: timed out"
            if "timed out" in str(exc):
                raise RetryableProviderError(
                    f"timeout talking to SMTP {where}", code="timeout"
                ) from None
            raise RetryableProviderError(
                f"SMTP {where} closed the connection", code="connection_error"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise PermanentProviderError(
                f"SMTP {where}: TLS certificate not trusted ({exc.verify_message})",
                code="tls_verify_failed",
                hint="check the host name, or set ca_file to the relay's CA",
            ) from None
        except TimeoutError:
            raise RetryableProviderError(
                f"timeout talking to SMTP {where}", code="timeout"
            ) from None
        except OSError as exc:  # refused, reset, DNS, other TLS errors
            raise RetryableProviderError(
                f"connection to SMTP {where} failed: {type(exc).__name__}",
                code="connection_error",
            ) from None
        except smtplib.SMTPException as exc:
            raise PermanentProviderError(f"SMTP {where}: {type(exc).__name__}") from None
        finally:
            if smtp is not None:
                _close(smtp, polite=ok)

    def send(
        self,
        notification: Notification,
        recipient: Recipient,
        *,
        idempotency_key: str,
        prior: Mapping[str, Any] | None = None,
    ) -> DeliveryResult:
        """Send one e-mail to the recipient's address(es); see the module docstring."""
        to = self._recipients_for(recipient)
        msg = self.build_message(notification, to, idempotency_key=idempotency_key, prior=prior)
        from_addr = parseaddr(self.settings.from_email)[1]
        with self._session() as smtp:
            refused = smtp.send_message(msg, from_addr=from_addr, to_addrs=to)
        message_id = str(msg["Message-ID"])
        data: dict[str, Any] = {"message_id": message_id}
        detail = f"e-mail {message_id} accepted for {len(to) - len(refused)} recipient(s)"
        if refused:
            data["refused"] = sorted(refused)
            detail += f"; refused: {', '.join(sorted(refused))}"
            log.warning("EMAIL provider %s: some recipients refused: %s", self.name, detail)
        return DeliveryResult(detail=detail, data=data)

    def check(self) -> CheckResult:
        """Connect, STARTTLS (or implicit TLS), log in and quit: no mail is sent."""
        cfg = self.settings
        try:
            with self._session():
                pass
        except ProviderError as exc:
            return CheckResult(False, f"SMTP check failed: {exc.describe()}")
        tls = "implicit TLS" if cfg.use_ssl else ("STARTTLS" if cfg.use_tls else "no TLS")
        auth = "login ok" if cfg.username else "no login configured"
        return CheckResult(True, f"SMTP {cfg.host}:{cfg.port} reachable ({tls}, {auth})")
