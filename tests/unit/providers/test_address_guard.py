"""The address guard (providers/guard.py) against server-side request forgery.

Nothing here leaves the machine: an autouse fixture wraps ``socket.connect`` and
``socket.getaddrinfo`` so that any attempt to reach a non-loopback address (or to ask DNS
about a name) is recorded and refused before a packet is sent; names are answered by
fake resolvers injected into the guard. Loopback listeners count the connections they
accept, so "refused" means "no connection was made", not just "an error was raised".
"""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
import trustme
from click.testing import CliRunner
from slack_sdk import WebClient

from bot import config_file
from bot.domain.errors import (
    ConfigError,
    PermanentProviderError,
    ProviderError,
    RetryableProviderError,
)
from bot.runtime import Runtime
from bot.settings import load_settings
from handlers.cli import main
from providers.base import Recipient
from providers.email import EmailConfig, EmailProvider
from providers.guard import AddressPolicy, TargetRefused, parse_url
from providers.http import HttpClient, guarded_session
from providers.registry import build_provider
from providers.slack_api import GuardedWebClient, SlackApi
from storage import catalog
from tests.fakes.receivers import HttpRecorder, Reply
from tests.fakes.smtp import SmtpInbox
from tests.unit.providers.conftest import make_notification

PUBLIC = "93.184.215.14"  # a global address: never connected to (the fixture intercepts)


# -- no traffic leaves the machine --------------------------------------------------------


@dataclass
class Connections:
    """Every connect() attempted in a test: loopback ones go through, others are refused
    (and recorded in ``outside``) before anything is sent."""

    attempts: list[tuple[str, int]] = field(default_factory=list)
    outside: list[tuple[str, int]] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)

    def to_port(self, port: int) -> list[tuple[str, int]]:
        return [a for a in self.attempts if a[1] == port]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[Connections]:
    seen = Connections()
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple):
            host, port = str(address[0]), int(address[1])
            seen.attempts.append((host, port))
            if not _is_loopback(host):
                seen.outside.append((host, port))
                raise ConnectionRefusedError(f"test: no traffic to {host}")
        real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        try:
            ipaddress.ip_address(name.split("%", 1)[0])
        except ValueError:
            if name != "localhost":
                seen.lookups.append(name)
                raise socket.gaierror(socket.EAI_NONAME, "test: no DNS") from None
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield seen
    assert seen.outside == [], f"connections outside loopback attempted: {seen.outside}"
    assert seen.lookups == [], f"DNS lookups attempted: {seen.lookups}"


class Listener:
    """A TCP listener on 127.0.0.1 counting the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.close()


class FakeResolver:
    """Answers names from a table, one answer list per call (the last one repeats)."""

    def __init__(self, answers: dict[str, Sequence[Sequence[str]]] | None = None) -> None:
        self.answers = dict(answers or {})
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        table = self.answers.get(host)
        if not table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        index = min(len([c for c in self.calls if c[0] == host]) - 1, len(table) - 1)
        return list(table[index])


# -- the table: URL forms refused at config time and at send time -------------------------


@dataclass(frozen=True)
class Case:
    id: str
    url: str  # may contain {port}: the loopback listener's
    static: bool = True  # refused by `imas config validate` / `apply` too
    allowed_by_switch: bool = False  # IMAS_ALLOW_PRIVATE_WEBHOOK_TARGETS would allow it


CASES = [
    Case("backslash-userinfo", "http://127.0.0.1:{port}\\@8.8.8.8/x"),
    Case("userinfo", "http://user:pw@127.0.0.1:{port}/"),
    Case("userinfo-public-name", "http://hooks.example.com@127.0.0.1:{port}/"),
    Case("decimal", "http://2130706433:{port}/"),
    Case("octal", "http://0177.0.0.1:{port}/"),
    Case("hex", "http://0x7f.0.0.1:{port}/"),
    Case("hex-integer", "http://0x7f000001:{port}/"),
    Case("short-form", "http://127.1:{port}/"),
    Case("ipv6-unspecified", "http://[::]:{port}/"),
    Case("ipv6-loopback", "http://[::1]:{port}/", allowed_by_switch=True),
    Case("ipv4-mapped", "http://[::ffff:127.0.0.1]:{port}/", allowed_by_switch=True),
    Case("ipv4-compatible", "http://[::127.0.0.1]:{port}/", allowed_by_switch=True),
    Case("6to4-loopback", "http://[2002:7f00:1::]:{port}/", allowed_by_switch=True),
    Case("nat64-loopback", "http://[64:ff9b::7f00:1]:{port}/", allowed_by_switch=True),
    Case("localhost-trailing-dot", "http://localhost.:{port}/", allowed_by_switch=True),
    Case("localhost-upper", "http://LOCALHOST:{port}/", allowed_by_switch=True),
    Case("localhost-subdomain", "http://imas.localhost:{port}/", allowed_by_switch=True),
    Case("unicode-dots", "http://127\u30020\u30020\u30021:{port}/", allowed_by_switch=True),
    Case("fullwidth-digits", "http://\uff11\uff12\uff17.0.0.1:{port}/", allowed_by_switch=True),
    Case("loopback", "http://127.0.0.1:{port}/hook", allowed_by_switch=True),
    Case("loopback-range", "http://127.5.6.7:{port}/", allowed_by_switch=True),
    Case("unspecified", "http://0.0.0.0:{port}/"),
    Case("this-network", "http://0.1.2.3:{port}/"),
    Case("cloud-metadata", "http://169.254.169.254/latest/meta-data/"),
    Case("private-10", "http://10.0.0.1/hook", allowed_by_switch=True),
    Case("private-172", "http://172.16.0.1/hook", allowed_by_switch=True),
    Case("private-192", "http://192.168.1.1/hook", allowed_by_switch=True),
    Case("cgnat", "http://100.64.0.1/hook", allowed_by_switch=True),
    Case("unique-local", "http://[fc00::1]/hook", allowed_by_switch=True),
    Case("ipv6-link-local", "http://[fe80::1]/hook"),
    Case("ipv6-zone-id", "http://[fe80::1%25lo]:{port}/"),
    Case("multicast", "http://224.0.0.1/"),
    Case("broadcast", "http://255.255.255.255/"),
    Case("ftp", "ftp://127.0.0.1:{port}/file"),
    Case("file", "file:///etc/passwd"),
    Case("gopher", "gopher://127.0.0.1:{port}/_HELO"),
    Case("javascript", "javascript:alert(1)"),
    Case("missing-host", "http:///hook"),
    Case("empty-host-with-port", "http://:{port}/"),
    Case("nul-byte", "http://127.0.0.1:{port}/\x00"),
    Case("tab", "http://127.0.0.1:{port}\t/"),
    Case("space", "http://127.0.0.1 :{port}/"),
    Case("crlf-header-injection", "http://hooks.example.com/\r\nHost: 127.0.0.1"),
    Case("zero-width-space", "http://hooks\u200b.example.com/"),
    Case("percent-encoded-host", "http://%31%32%37.0.0.1:{port}/"),
    Case("numeric-last-label", "http://hooks.123/"),
    Case("port-out-of-range", "http://hooks.example.com:70000/"),
    Case("port-zero", "http://hooks.example.com:0/"),
    Case("empty-port", "http://hooks.example.com:/"),
]


def _url(case: Case, port: int) -> str:
    return case.url.replace("{port}", str(port))


def _webhook_config(url: str) -> str:
    # JSON strings are YAML double-quoted scalars: control characters stay escaped
    return f"""teams:
  - name: SRE Core
providers:
  - name: Hook
    type: WEBHOOK
    config:
      format: json
      url: {json.dumps(url)}
"""


def test_the_table_covers_at_least_thirty_forms() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
@pytest.mark.parametrize("client", ["http_client", "requests_session"])
def test_refused_at_send_time_without_a_connection(
    case: Case, client: str, listener: Listener, connections: Connections
) -> None:
    url = _url(case, listener.port)
    resolver = FakeResolver()
    if client == "http_client":
        with pytest.raises(TargetRefused) as err:
            HttpClient(resolver=resolver).request("POST", url, json={"x": 1})
        assert err.value.message.startswith("refused: ")
    else:
        # the session Google's clients use: requests rewrites some forms first (drops
        # an empty or zero port, percent-encodes CR/LF) and the adapter checks what it
        # would send; either way nothing connects
        session = guarded_session(AddressPolicy(resolver=resolver))
        with pytest.raises((ProviderError, requests.RequestException)):
            session.post(url, json={"x": 1}, timeout=2)
    assert connections.to_port(listener.port) == []
    assert listener.accepted == 0
    if client == "http_client":
        assert resolver.calls == []  # refused before any name is resolved


@pytest.mark.parametrize("case", [c for c in CASES if c.static], ids=lambda c: c.id)
def test_refused_by_config_validate(case: Case) -> None:
    text = _webhook_config(_url(case, 8080))
    with pytest.raises(ConfigError) as err:
        config_file.parse(text, {}, name="imas.yml")
    message = str(err.value)
    assert "imas.yml:" in message and "providers[0]" in message
    if case.allowed_by_switch:  # ... unless IMAS_ALLOW_PRIVATE_WEBHOOK_TARGETS says so
        config_file.parse(text, {}, name="imas.yml", allow_private=True)
    else:
        with pytest.raises(ConfigError):
            config_file.parse(text, {}, name="imas.yml", allow_private=True)


@pytest.mark.parametrize("case", [c for c in CASES if c.static], ids=lambda c: c.id)
def test_refused_by_config_apply(case: Case, make_settings: Any) -> None:
    """``apply`` checks again with the runtime's own switch: a document validated where
    private targets were allowed is refused where they are not, before any write."""
    rt = Runtime.build(make_settings(allow_private_webhook_targets=False), migrate=False)
    text = _webhook_config(_url(case, 8080))
    try:
        document = config_file.parse(text, {}, name="imas.yml", allow_private=True)
    except ConfigError as exc:
        error = exc
    else:
        with pytest.raises(ConfigError) as info, rt.transaction() as session:
            config_file.apply(session, rt, document)
        error = info.value
        assert "imas.yml:8: providers[0].config.url: provider 'Hook': refused: " in str(error)
    assert "providers[0]" in str(error)
    with rt.transaction() as session:
        assert catalog.get_provider(session, name="Hook") is None
        assert catalog.get_team(session, name="SRE Core") is None
    rt.close()


def test_config_errors_name_file_line_key_and_reason_without_the_secret() -> None:
    text = _webhook_config("http://10.0.0.1/hooks/SECRET-TOKEN?sig=SECRET-SIG")
    with pytest.raises(ConfigError) as err:
        config_file.parse(text, {}, name="imas.yml")
    message = str(err.value)
    assert (
        "imas.yml:8: providers[0].config.url: provider 'Hook': refused: 10.0.0.1 is a "
        "private address (hint: set IMAS_ALLOW_PRIVATE_WEBHOOK_TARGETS=true" in message
    )
    assert "SECRET" not in message


def test_cli_validate_reports_the_refusal(tmp_path: Any) -> None:
    path = tmp_path / "imas.yml"
    path.write_text(_webhook_config("http://169.254.169.254/latest/meta-data/"))
    result = CliRunner().invoke(main, ["config", "validate", str(path)])
    assert result.exit_code == 2
    assert f"{path}:8: providers[0].config.url" in result.output
    assert "169.254.169.254 is a link-local address" in result.output
    # the global switch does not open link-local: only an allowed_hosts entry does
    result = CliRunner().invoke(
        main,
        ["config", "validate", str(path)],
        env={"IMAS_ALLOW_PRIVATE_WEBHOOK_TARGETS": "true"},
    )
    assert result.exit_code == 2


def test_config_time_checks_do_not_resolve_names(connections: Connections) -> None:
    config_file.parse(_webhook_config("https://hooks.example.com/x"), {}, name="imas.yml")
    assert connections.lookups == []


def test_every_provider_target_key_is_checked_at_config_time() -> None:
    text = """providers:
  - name: Slack
    type: SLACK
    config: {bot_token: x, endpoint: "http://127.0.0.1:9/api/"}
  - name: Discord
    type: DISCORD
    config: {webhook_url: "http://10.1.2.3/api/webhooks/1/TOKEN"}
  - name: Teams
    type: TEAMS
    config: {webhook_url: "http://[::1]/hook"}
  - name: Mail
    type: EMAIL
    config: {host: 127.0.0.1, port: 25, from_email: imas@example.com}
  - name: PD
    type: WEBHOOK
    config: {format: pagerduty, routing_key: k, endpoint: "http://192.168.0.9"}
  - name: Push
    type: NTFY
    config: {server: "http://100.64.1.1", topic: imas}
  - name: SMS
    type: SMS
    config: {application_key: a, application_secret: b, consumer_key: c,
             service_name: sms-ab12345-1, sender: IMAS, recipients: ["+33600000000"],
             endpoint: "http://172.20.0.1/1.0"}
"""
    with pytest.raises(ConfigError) as err:
        config_file.parse(text, {}, name="imas.yml")
    message = str(err.value)
    for expected in (
        "imas.yml:4: providers[0].config.endpoint",
        "imas.yml:7: providers[1].config.webhook_url",
        "imas.yml:10: providers[2].config.webhook_url",
        "imas.yml:13: providers[3].config.host",
        "imas.yml:16: providers[4].config.endpoint",
        "imas.yml:19: providers[5].config.server",
        "imas.yml:24: providers[6].config.endpoint",
    ):
        assert expected in message, message
    assert "TOKEN" not in message
    config_file.parse(text, {}, name="imas.yml", allow_private=True)


def test_per_provider_allowances_at_config_time() -> None:
    text = """providers:
  - name: Internal
    type: WEBHOOK
    config: {url: "http://10.0.0.5:8080/hook", allow_private_targets: true}
  - name: Relay
    type: EMAIL
    config: {host: 10.0.0.25, port: 587, from_email: imas@example.com,
             allowed_hosts: ["10.0.0.25:587"]}
  - name: Metadata-by-name
    type: WEBHOOK
    config: {url: "http://169.254.169.254/x", allowed_hosts: ["169.254.169.254"]}
"""
    config_file.parse(text, {}, name="imas.yml")
    wrong_port = text.replace('"10.0.0.25:587"', '"10.0.0.25:25"')
    with pytest.raises(ConfigError, match=r"imas.yml:7: providers\[1\].config.host"):
        config_file.parse(wrong_port, {}, name="imas.yml")
    bad_entry = text.replace('"10.0.0.25:587"', '"user@10.0.0.25"')
    with pytest.raises(ConfigError, match=r"providers\[1\].*allowed_hosts"):
        config_file.parse(bad_entry, {}, name="imas.yml")


# -- settings: SLACK_API_URL, GOOGLE_API_ENDPOINT, GOOGLE_TOKEN_URI -------------------------


@pytest.mark.parametrize(
    ("field_name", "env_name"),
    [
        ("slack_api_url", "SLACK_API_URL"),
        ("google_api_endpoint", "GOOGLE_API_ENDPOINT"),
        ("google_token_uri", "GOOGLE_TOKEN_URI"),
    ],
)
def test_settings_endpoints_are_checked(field_name: str, env_name: str) -> None:
    with pytest.raises(ConfigError, match=f"{env_name}: refused: 127.0.0.1 is a loopback"):
        load_settings(**{field_name: "http://127.0.0.1:9/api/"})
    load_settings(**{field_name: "http://127.0.0.1:9/api/", "allow_private_webhook_targets": True})
    with pytest.raises(ConfigError, match=f"{env_name}: refused: the URL contains a backslash"):
        load_settings(**{field_name: "http://127.0.0.1:9\\@slack.com/api/"})
    with pytest.raises(ConfigError, match=f"{env_name}: refused: 169.254.169.254"):
        load_settings(
            **{field_name: "http://169.254.169.254/", "allow_private_webhook_targets": True}
        )


# -- redirects ---------------------------------------------------------------------------


@pytest.fixture
def first_hop() -> Iterator[HttpRecorder]:
    with HttpRecorder() as rec:
        yield rec


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("to", ["second-listener", "private"])
def test_redirects_are_refused_at_send_time(
    status: int, to: str, first_hop: HttpRecorder, listener: Listener, connections: Connections
) -> None:
    """The first hop is allowed by an allow-list entry for that exact host:port only; its
    redirect is never followed, whatever the target."""
    location = (
        f"http://127.0.0.1:{listener.port}/next?token=SECRET"
        if to == "second-listener"
        else "http://10.0.0.1/next?token=SECRET"
    )
    first_hop.default("/hook", Reply(status, headers={"Location": location}, body=b""))
    provider = build_provider(
        type_name="WEBHOOK",
        name="Hook",
        config={"url": first_hop.url("/hook"), "allowed_hosts": [f"127.0.0.1:{first_hop.port}"]},
        http=HttpClient(),  # the global switch is off
    )
    with pytest.raises(PermanentProviderError) as err:
        provider.send(make_notification(), Recipient("default"), idempotency_key="k")
    assert err.value.code == "redirect_refused"
    target = "127.0.0.1" if to == "second-listener" else "10.0.0.1"
    assert f"answered HTTP {status} redirecting to {target}" in err.value.message
    assert "SECRET" not in err.value.describe()
    assert len(first_hop.requests) == 1
    assert listener.accepted == 0 and connections.to_port(listener.port) == []
    # the allow-list entry is for that host:port only: the second listener stays refused
    direct = build_provider(
        type_name="WEBHOOK",
        name="Hook",
        config={
            "url": f"http://127.0.0.1:{listener.port}/",
            "allowed_hosts": [f"127.0.0.1:{first_hop.port}"],
        },
        http=HttpClient(),
    )
    with pytest.raises(TargetRefused, match="127.0.0.1 is a loopback address"):
        direct.send(make_notification(), Recipient("default"), idempotency_key="k")
    assert listener.accepted == 0


def test_google_sessions_refuse_redirects_even_when_asked_to_follow(
    first_hop: HttpRecorder, listener: Listener, connections: Connections
) -> None:
    first_hop.default(
        "/token", Reply(302, headers={"Location": f"http://127.0.0.1:{listener.port}/"})
    )
    session = guarded_session(AddressPolicy(allow_private=True))
    with pytest.raises(TargetRefused) as err:
        session.post(first_hop.url("/token"), data={"a": "b"}, allow_redirects=True, timeout=2)
    assert err.value.code == "redirect_refused"
    assert listener.accepted == 0 and connections.to_port(listener.port) == []


class _RedirectingSlack:
    """A fake Slack API answering every call with a 302 to ``location``."""

    def __init__(self, location: str) -> None:
        outer = self
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                outer.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_slack_client_never_forwards_the_bot_token_on_a_redirect(
    connections: Connections,
) -> None:
    with HttpRecorder() as second:
        second.default("/api/auth.test", Reply(200, body={"ok": True}))
        slack = _RedirectingSlack(second.url("/api/auth.test"))
        try:
            # control: slack_sdk's own client follows the 302 with the token
            WebClient(token="xoxb-SECRET", base_url=slack.url, retry_handlers=[]).api_call(
                "auth.test"
            )
            (leaked,) = second.requests
            assert leaked.header("Authorization") == "Bearer xoxb-SECRET"
            second.requests.clear()
            attempts = len(connections.to_port(second.port))

            # IMAS's client, private targets allowed: the redirect is refused all the same
            api = SlackApi(
                token="xoxb-SECRET",
                base_url=slack.url,
                policy=AddressPolicy(allow_private=True),
            )
            with pytest.raises(PermanentProviderError) as err:
                api.call("auth.test")
            assert err.value.code == "redirect_refused"
            assert "xoxb-SECRET" not in err.value.describe()
            assert slack.requests == 2
            assert second.requests == []
            assert len(connections.to_port(second.port)) == attempts
        finally:
            slack.stop()


def test_bolt_listener_clients_are_swapped_for_guarded_copies() -> None:
    from slack_bolt.context import BoltContext

    app_client = GuardedWebClient(
        token="xoxb-app", base_url="https://slack.example.com/api/", policy=AddressPolicy()
    )
    context = BoltContext(
        {"client": WebClient(token="xoxb-req", base_url=app_client.base_url, team_id="T1")}
    )
    calls: list[bool] = []
    app_client.middleware()(context, lambda: calls.append(True))
    assert calls == [True]
    client = context.client
    assert isinstance(client, GuardedWebClient)
    assert client.token == "xoxb-req" and client.base_url == app_client.base_url
    assert client.default_params.get("team_id") == "T1"
    assert client.policy is app_client.policy


# -- DNS: resolved once, every answer checked, connection pinned ----------------------------


def test_rebinding_the_connection_goes_to_the_checked_address(
    listener: Listener, connections: Connections
) -> None:
    resolver = FakeResolver({"rebind.test": [[PUBLIC], ["127.0.0.1"]]})
    client = HttpClient(resolver=resolver)
    with pytest.raises(RetryableProviderError) as err:
        client.request("GET", f"http://rebind.test:{listener.port}/x")
    assert err.value.code == "connection_error"
    assert resolver.calls == [("rebind.test", listener.port)]  # one resolution only
    assert connections.outside == [(PUBLIC, listener.port)]  # intercepted, nothing sent
    assert listener.accepted == 0
    connections.outside.clear()


def test_rebinding_guard_level_pins_the_first_answer() -> None:
    resolver = FakeResolver({"rebind.test": [[PUBLIC], ["127.0.0.1"]]})
    target = AddressPolicy(resolver=resolver).resolve_url("https://rebind.test/hook")
    assert target.address == PUBLIC and target.host == "rebind.test" and target.port == 443
    assert target.endpoint.host_header == "rebind.test"
    assert resolver.calls == [("rebind.test", 443)]


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        (["127.0.0.1"], "rebind.test resolves to 127.0.0.1, a loopback address"),
        ([PUBLIC, "10.0.0.7"], "rebind.test resolves to 10.0.0.7, a private address"),
        (["::ffff:169.254.169.254"], "embedding 169.254.169.254, a link-local address"),
        (["0.0.0.0"], "rebind.test resolves to 0.0.0.0, an unspecified address"),
    ],
)
def test_every_resolved_address_is_checked(
    answers: list[str], reason: str, listener: Listener, connections: Connections
) -> None:
    resolver = FakeResolver({"rebind.test": [answers]})
    with pytest.raises(TargetRefused) as err:
        HttpClient(resolver=resolver).request("GET", f"http://rebind.test:{listener.port}/")
    assert reason in err.value.message
    assert err.value.code == "private_target"
    assert connections.attempts == [] and listener.accepted == 0


def test_a_name_that_does_not_resolve_is_refused(connections: Connections) -> None:
    resolver = FakeResolver()
    with pytest.raises(RetryableProviderError) as err:
        HttpClient(resolver=resolver).request("GET", "https://nowhere.test/hook")
    assert err.value.code == "dns_error"
    assert "cannot resolve nowhere.test" in err.value.message
    assert connections.attempts == []


def test_slack_client_connects_to_the_checked_address(connections: Connections) -> None:
    resolver = FakeResolver({"slack.test": [[PUBLIC], ["127.0.0.1"]]})
    api = SlackApi(
        token="xoxb-x",
        base_url="http://slack.test:8080/api/",
        policy=AddressPolicy(resolver=resolver),
    )
    with pytest.raises(RetryableProviderError):
        api.call("auth.test")
    assert resolver.calls == [("slack.test", 8080)]
    assert connections.outside == [(PUBLIC, 8080)]
    connections.outside.clear()


def test_smtp_connects_to_the_checked_address(connections: Connections) -> None:
    resolver = FakeResolver({"mail.test": [[PUBLIC], ["127.0.0.1"]]})
    config = EmailConfig(host="mail.test", port=2525, from_email="imas@example.com", timeout=1)
    provider = EmailProvider(name="Mail", config=config, http=HttpClient(resolver=resolver))
    with pytest.raises(RetryableProviderError):
        provider.send(make_notification(), Recipient("email", "a@example.com"), idempotency_key="k")
    assert resolver.calls == [("mail.test", 2525)]
    assert connections.outside == [(PUBLIC, 2525)]
    connections.outside.clear()


def test_smtp_on_loopback_is_refused_unless_allowed(connections: Connections) -> None:
    with SmtpInbox() as inbox:
        before = len(connections.to_port(inbox.port))
        values: dict[str, Any] = {
            "host": inbox.host,
            "port": inbox.port,
            "username": "imas",
            "password": "smtp-secret",
            "from_email": "imas@example.com",
            "ca_file": inbox.ca_file,
            "timeout": 5,
        }
        refused = EmailProvider(name="Mail", config=EmailConfig(**values), http=HttpClient())
        with pytest.raises(TargetRefused, match="127.0.0.1 is a loopback address"):
            refused.send(
                make_notification(), Recipient("email", "a@example.com"), idempotency_key="k"
            )
        assert len(connections.to_port(inbox.port)) == before and inbox.messages == []
        # allowed by name through the provider's allow-list; STARTTLS still verifies the
        # name ("localhost" is on the inbox's certificate) on the pinned 127.0.0.1
        resolver = FakeResolver({"localhost": [["127.0.0.1"]]})
        allowed = EmailProvider(
            name="Mail",
            config=EmailConfig(**values | {"host": "localhost", "allowed_hosts": ["localhost"]}),
            http=HttpClient(resolver=resolver),
        )
        allowed.send(make_notification(), Recipient("email", "a@example.com"), idempotency_key="k")
        assert len(inbox.messages) == 1


# -- TLS keeps the name while the connection is pinned ---------------------------------------


class _TlsServer:
    """HTTPS on 127.0.0.1 with a certificate for ``names``; records SNI and Host."""

    def __init__(self, ca: trustme.CA, *names: str) -> None:
        self.sni: list[str | None] = []
        self.hosts: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer.hosts.append(self.headers.get("Host"))
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(*names).configure_cert(context)

        def sni(sock: Any, name: str | None, ctx: Any) -> None:
            outer.sni.append(name)

        context.sni_callback = sni
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ca(tmp_path: Any) -> tuple[trustme.CA, str]:
    authority = trustme.CA()
    path = str(tmp_path / "ca.pem")
    authority.cert_pem.write_to_path(path)
    return authority, path


def test_https_pinned_keeps_sni_host_header_and_certificate_check(
    ca: tuple[trustme.CA, str],
) -> None:
    authority, ca_file = ca
    resolver = FakeResolver({"imas.test": [["127.0.0.1"]], "other.test": [["127.0.0.1"]]})
    client = HttpClient(resolver=resolver, allowed_hosts=["imas.test", "other.test"])
    server = _TlsServer(authority, "imas.test")
    try:
        response = client.request("GET", f"https://imas.test:{server.port}/ok", verify=ca_file)
        assert response.json() == {"ok": True}
        assert server.sni == ["imas.test"]
        assert server.hosts == [f"imas.test:{server.port}"]
        # the certificate is checked against the URL's name, not the pinned address
        with pytest.raises(ProviderError):
            client.request("GET", f"https://other.test:{server.port}/ok", verify=ca_file)
        assert server.hosts == [f"imas.test:{server.port}"]
    finally:
        server.stop()


def test_slack_https_pinned_keeps_the_name(ca: tuple[trustme.CA, str]) -> None:
    authority, ca_file = ca
    resolver = FakeResolver({"slack.test": [["127.0.0.1"]]})
    server = _TlsServer(authority, "slack.test")
    try:
        client = GuardedWebClient(
            token="xoxb-x",
            base_url=f"https://slack.test:{server.port}/api/",
            ssl=ssl.create_default_context(cafile=ca_file),
            policy=AddressPolicy.build(allowed_hosts=["slack.test"], resolver=resolver),
        )
        assert client.api_call("auth.test")["ok"] is True
        assert server.sni == ["slack.test"]
        assert server.hosts == [f"slack.test:{server.port}"]
    finally:
        server.stop()


# -- the guard's own API ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("https://hooks.example.com/x?y#z", "hooks.example.com", 443),
        ("HTTP://Hooks.Example.COM.:8080", "hooks.example.com", 8080),
        ("http://ex\u00e4mple.com/", "xn--exmple-cua.com", 80),
        ("http://[2001:db8::1]:81/", "2001:db8::1", 81),
        ("https://1.2.3.4.nip.io/", "1.2.3.4.nip.io", 443),
    ],
)
def test_parse_url_accepts_plain_forms(url: str, host: str, port: int) -> None:
    endpoint = parse_url(url)
    assert (endpoint.host, endpoint.port) == (host, port)


def test_allowed_hosts_entry_without_port_allows_any_port() -> None:
    policy = AddressPolicy.build(allowed_hosts=["10.0.0.5", "[fd00::5]:8443"])
    assert policy.check_url("http://10.0.0.5:1234/").host == "10.0.0.5"
    assert policy.check_url("https://[fd00::5]:8443/").port == 8443
    with pytest.raises(TargetRefused):
        policy.check_url("https://[fd00::5]:9443/")
    with pytest.raises(TargetRefused, match="never|unspecified"):
        AddressPolicy.build(allowed_hosts=["0.0.0.0"]).check_url("http://0.0.0.0/")


def test_provider_instances_get_their_own_allowances_only() -> None:
    shared = HttpClient()
    open_one = build_provider(
        type_name="WEBHOOK",
        name="Internal",
        config={"url": "http://10.0.0.5/hook", "allow_private_targets": True},
        http=shared,
    )
    plain = build_provider(
        type_name="WEBHOOK",
        name="Public",
        config={"url": "https://hooks.example.com/x"},
        http=shared,
    )
    assert open_one.http is not shared and open_one.http.policy.allow_private
    assert plain.http is shared and not shared.allow_private


def test_redirect_without_location_is_a_plain_http_error(first_hop: HttpRecorder) -> None:
    first_hop.default("/hook", Reply(304, body=b""))
    client = HttpClient(allowed_hosts=[f"127.0.0.1:{first_hop.port}"])
    with pytest.raises(PermanentProviderError) as err:
        client.request("GET", first_hop.url("/hook"))
    assert err.value.code == "HTTP 304"


def test_resolver_is_injectable_and_system_resolver_is_the_default() -> None:
    from providers.guard import system_resolver

    assert AddressPolicy().resolver is system_resolver
    seen: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        seen.append(host)
        return [PUBLIC]

    assert AddressPolicy(resolver=resolver).resolve_url("https://a.test/").address == PUBLIC
    assert seen == ["a.test"]


def test_bolt_app_listeners_receive_guarded_clients(make_settings: Any, fake_slack: Any) -> None:
    """The real Bolt app: a listener's ``client`` is a GuardedWebClient, not Bolt's plain
    per-request copy of the app client."""
    import time
    from urllib.parse import urlencode

    from slack_bolt.request import BoltRequest
    from slack_sdk.signature import SignatureVerifier

    from handlers.slack.app import build_bolt_app

    secret = "guard-signing-secret"
    rt = Runtime.build(
        make_settings(
            slack_bot_token=fake_slack.bot_token,
            slack_signing_secret=secret,
            slack_api_url=fake_slack.url,
        ),
        migrate=False,
    )
    app, background = build_bolt_app(rt)
    seen: list[Any] = []

    @app.command("/guardtest")
    def guardtest(ack: Any, client: Any) -> None:
        seen.append(client)
        ack()

    body = urlencode(
        {"command": "/guardtest", "text": "", "user_id": "U1", "team_id": "T1", "channel_id": "C1"}
    )
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    response = app.dispatch(
        BoltRequest(
            body=body,
            headers={
                "content-type": ["application/x-www-form-urlencoded"],
                "x-slack-request-timestamp": [timestamp],
                "x-slack-signature": [signature],
            },
        )
    )
    background.shutdown(wait=False)
    rt.close()
    assert response.status == 200
    (client,) = seen
    assert isinstance(client, GuardedWebClient)
    assert client.token == fake_slack.bot_token
    assert client.policy is rt.http.policy
