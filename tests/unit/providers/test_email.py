from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from bot.domain.errors import PermanentProviderError, RetryableProviderError
from providers.base import Recipient
from providers.email import EmailConfig, EmailProvider, message_id_for
from providers.http import HttpClient
from tests.fakes.smtp import SmtpInbox, free_port
from tests.unit.providers.conftest import make_notification

PASSWORD = "smtp-PASSWORD-secret"

# the plain-text and implicit-TLS inboxes accept AUTH without STARTTLS on purpose
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture
def inbox() -> Iterator[SmtpInbox]:
    with SmtpInbox("imas", PASSWORD) as box:
        yield box


def provider(inbox: SmtpInbox, **overrides) -> EmailProvider:
    values = {
        "host": inbox.host,
        "port": inbox.port,
        "username": "imas",
        "password": PASSWORD,
        "from_email": "IMAS <imas@example.com>",
        "ca_file": inbox.ca_file,
        "timeout": 5,
        "recipients": ["sre@example.com", "oncall@example.com"],
    }
    values.update(overrides)
    return EmailProvider(
        name="Mail", config=EmailConfig(**values), http=HttpClient(allow_private=True)
    )


def test_starttls_auth_delivers_multipart(inbox):
    p = provider(inbox)
    n = make_notification("created", title="Disk <full> & co")
    result = p.send(n, Recipient("email", "alice@example.com"), idempotency_key="d-1:created")
    assert result.data["message_id"] == message_id_for("d-1:created", "imas@example.com")
    (msg,) = inbox.messages
    (env,) = inbox.envelopes
    assert env.tls and env.login == "imas"
    assert env.rcpt_tos == ["alice@example.com"]
    assert env.mail_from == "imas@example.com"
    assert msg["Subject"] == "🔴 [SEV1_CRITICAL] INC-A1B2C3 Disk <full> & co - redis-prod: created"
    assert msg["Message-ID"] == result.data["message_id"]
    assert msg.get_content_type() == "multipart/alternative"
    plain = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Service: redis-prod" in plain and "Title: Disk <full> & co" in plain
    assert "Disk &lt;full&gt; &amp; co" in html and "<full>" not in html
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["In-Reply-To"] is None


def test_default_recipients_and_threading(inbox):
    p = provider(inbox)
    assert p.default_recipients() == [Recipient("default")]
    first = p.send(make_notification(), Recipient("default"), idempotency_key="k1")
    p.send(
        make_notification("resolved", text="fixed"),
        Recipient("default"),
        idempotency_key="k2",
        prior=first.data,
    )
    assert inbox.envelopes[0].rcpt_tos == ["sre@example.com", "oncall@example.com"]
    second = inbox.messages[1]
    assert second["In-Reply-To"] == first.data["message_id"]
    assert second["References"] == first.data["message_id"]
    assert second["Message-ID"] != first.data["message_id"]


def test_same_idempotency_key_same_message_id(inbox):
    p = provider(inbox)
    a = p.send(make_notification(), Recipient("default"), idempotency_key="dup")
    b = p.send(make_notification(), Recipient("default"), idempotency_key="dup")
    assert a.data["message_id"] == b.data["message_id"]
    assert inbox.messages[0]["Message-ID"] == inbox.messages[1]["Message-ID"]


def test_no_default_recipients_without_config(inbox):
    p = provider(inbox, recipients=[])
    assert p.default_recipients() == []
    with pytest.raises(PermanentProviderError):
        p.send(make_notification(), Recipient("default"), idempotency_key="k")


def test_wrong_password_is_permanent_and_hides_password(inbox):
    p = provider(inbox, password="wrong-PASSWORD-value")
    with pytest.raises(PermanentProviderError) as err:
        p.send(make_notification(), Recipient("default"), idempotency_key="k")
    assert err.value.hint and "username/password" in err.value.hint
    assert err.value.code == "SMTP 535"
    assert "wrong-PASSWORD-value" not in err.value.describe()
    assert inbox.messages == []
    check = p.check()
    assert not check.ok and "wrong-PASSWORD-value" not in check.detail


def test_untrusted_certificate_is_permanent(inbox):
    p = provider(inbox, ca_file=None)  # system CAs do not know the trustme CA
    with pytest.raises(PermanentProviderError) as err:
        p.send(make_notification(), Recipient("default"), idempotency_key="k")
    assert err.value.code == "tls_verify_failed"


def test_recipient_refused_permanent_vs_temporary(inbox):
    inbox.rcpt_replies["gone@example.com"] = "550 5.1.1 no such user"
    inbox.rcpt_replies["busy@example.com"] = "450 4.2.1 mailbox busy"
    p = provider(inbox)
    with pytest.raises(PermanentProviderError):
        p.send(make_notification(), Recipient("email", "gone@example.com"), idempotency_key="k")
    with pytest.raises(RetryableProviderError):
        p.send(make_notification(), Recipient("email", "busy@example.com"), idempotency_key="k")


def test_partial_refusal_is_success(inbox):
    inbox.rcpt_replies["oncall@example.com"] = "550 5.1.1 no such user"
    result = provider(inbox).send(make_notification(), Recipient("default"), idempotency_key="k")
    assert result.data["refused"] == ["oncall@example.com"]
    assert inbox.envelopes[0].rcpt_tos == ["sre@example.com"]


def test_data_4xx_retryable_5xx_permanent(inbox):
    p = provider(inbox)
    inbox.data_reply = "451 4.3.0 try again later"
    with pytest.raises(RetryableProviderError) as err:
        p.send(make_notification(), Recipient("default"), idempotency_key="k")
    assert err.value.code == "SMTP 451"
    inbox.data_reply = "554 5.7.1 rejected as spam"
    with pytest.raises(PermanentProviderError):
        p.send(make_notification(), Recipient("default"), idempotency_key="k")


def test_connection_refused_is_retryable():
    config = EmailConfig(
        host="127.0.0.1", port=free_port(), from_email="imas@example.com", timeout=1
    )
    p = EmailProvider(name="Mail", config=config, http=HttpClient(allow_private=True))
    with pytest.raises(RetryableProviderError) as err:
        p.send(make_notification(), Recipient("email", "a@example.com"), idempotency_key="k")
    assert err.value.code == "connection_error"
    assert not p.check().ok


def test_silent_server_times_out():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True)
    thread.start()
    try:
        config = EmailConfig(
            host="127.0.0.1",
            port=server.getsockname()[1],
            from_email="imas@example.com",
            timeout=0.5,
        )
        p = EmailProvider(name="Mail", config=config, http=HttpClient(allow_private=True))
        with pytest.raises(RetryableProviderError) as err:
            p.send(make_notification(), Recipient("email", "a@example.com"), idempotency_key="k")
        assert err.value.code == "timeout"
    finally:
        for conn in accepted:
            conn.close()
        server.close()


def test_starttls_not_offered():
    with SmtpInbox("imas", PASSWORD, offer_starttls=False) as box:
        with pytest.raises(PermanentProviderError) as err:
            provider(box).send(make_notification(), Recipient("default"), idempotency_key="k")
        assert err.value.code == "starttls_unavailable"
        assert box.messages == []
        # explicitly plain text (trusted network only): delivered without TLS
        provider(box, use_tls=False).send(
            make_notification(), Recipient("default"), idempotency_key="k"
        )
        assert not box.envelopes[0].tls


def test_plain_server_requiring_starttls_rejects_plain_client():
    with SmtpInbox("imas", PASSWORD, require_starttls=True) as box:
        with pytest.raises(PermanentProviderError) as err:
            provider(box, use_tls=False).send(
                make_notification(), Recipient("default"), idempotency_key="k"
            )
        assert err.value.code == "smtp_extension_unavailable"
        assert err.value.hint and "STARTTLS" in err.value.hint


def test_implicit_tls():
    with SmtpInbox("imas", PASSWORD, implicit_tls=True) as box:
        p = provider(box, use_ssl=True)
        p.send(make_notification(), Recipient("email", "x@example.com"), idempotency_key="k")
        assert box.envelopes[0].tls
        result = p.check()
        assert result.ok and "implicit TLS" in result.detail


def test_check_logs_in_without_sending(inbox):
    result = provider(inbox).check()
    assert result.ok, result.detail
    assert "STARTTLS" in result.detail
    assert inbox.messages == []


def test_invalid_recipient_address(inbox):
    with pytest.raises(PermanentProviderError):
        provider(inbox).send(
            make_notification(), Recipient("email", "a@b.c\r\nBcc: x@y.z"), idempotency_key="k"
        )
    with pytest.raises(PermanentProviderError):
        provider(inbox).send(make_notification(), Recipient("user", "U123"), idempotency_key="k")


def test_config_validation():
    base = {"host": "smtp.example.com", "from_email": "imas@example.com"}
    cfg = EmailConfig(**base)
    assert (cfg.port, cfg.use_tls, cfg.use_ssl, cfg.timeout) == (587, True, False, 10)
    with pytest.raises(ValueError):
        EmailConfig(**base, username="u")  # password missing
    with pytest.raises(ValueError):
        EmailConfig(**base, recipients=["not-an-address"])
    with pytest.raises(ValueError):
        EmailConfig(host="h", from_email="nope")
    with pytest.raises(ValueError):
        EmailConfig(**base, unknown=1)
