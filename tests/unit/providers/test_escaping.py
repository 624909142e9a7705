"""User- and alert-supplied text never reaches a target as markup (issue 10, item 1).

The property tests run every builder of ``providers/slack_blocks.py`` and
``providers/messages.py`` (the tables below must name each public function: a new builder
without an entry fails :func:`test_every_builder_is_in_a_table`) with arbitrary text,
hostile markup included, in every user-supplied field. In the Slack payloads the only
``<...>`` tokens left are the mentions and links IMAS built from the ids and URLs the test
controls; every ``&`` starts a whole entity (no ``&am`` left by a cut).
"""

from __future__ import annotations

import email
import email.policy
import inspect
import json
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.steps import topic_for
from providers import messages, slack_blocks
from providers.base import EVENTS, IncidentView, Notification
from providers.discord import discord_payload
from providers.email import EmailConfig, EmailProvider
from providers.http import HttpClient
from providers.ntfy import ntfy_message
from providers.sms_ovh import sms_body_text
from providers.teams import adaptive_card, teams_message
from providers.text import (
    ZWSP,
    channel_link,
    discord_escape,
    fit,
    link,
    mention_user,
    one_line,
    slack_escape,
    slack_fit,
    slack_truncate,
    slack_unescape,
    teams_escape,
)
from providers.webhook import render_template, slack_webhook_payload
from tests.unit.providers.conftest import make_incident

# -- what the test controls ------------------------------------------------------------

SHORT_ID = "INC-A1B2C3"
WHEN = datetime(2026, 12, 4, 16, 30, tzinfo=UTC)
WHEN_EPOCH, WHEN_TEXT = int(WHEN.timestamp()), "2026-12-04 16:30 UTC"
CHANNEL = "C0WARROOM01"
USER = "U0ALICE01"
BASE = make_incident()
URLS = {
    BASE.incident_url,
    BASE.runbook_url,
    BASE.lid_url,
    BASE.war_room_url,
}
LABELS = {"LID Document", "LID document", "Runbook", "Open", SHORT_ID}
ALLOWED_SLACK_TOKEN = re.compile(
    "|".join(
        [
            re.escape(f"<#{CHANNEL}>"),
            re.escape(f"<@{USER}>"),
            re.escape(f"<!date^{WHEN_EPOCH}^{{time}}|{WHEN_TEXT}>"),
            *(
                re.escape(f"<{url}|{label}>")
                for url in sorted(u for u in URLS if u)
                for label in sorted(LABELS)
            ),
        ]
    )
)
ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")

HOSTILE = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!subteam^S123>",
    "<@U123>",
    "<@W0BAD>",
    "<#C123>",
    "<https://evil.example|runbook>",
    "<mailto:a@evil.example|mail>",
    "<http://evil.example>",
    "&",
    "&amp;",
    "&lt;",
    "&gt",
    "<",
    ">",
    "|",
    "@everyone",
    "@HERE",
    "[runbook](https://evil.example)",
    "[x][1]\n\n[1]: https://evil.example",
    "<at>Bob</at>",
    "\r\n",
    "\n",
    "\r",
    "\x00",
    "\x1b[31m",
    "\u2028",
    "\\",
    "*",
    "`",
    "Bcc: evil@example.com",
]
pieces = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12))
short_text = st.lists(pieces, max_size=8).map("".join)
user_text = st.one_of(
    short_text,
    st.builds(lambda text, n: text * n, short_text, st.integers(1, 600)),  # cuts
)


@dataclass(frozen=True)
class Drawn:
    """Every user-supplied field of one example."""

    title: str
    description: str
    service: str
    team: str
    lead: str
    summary: str
    note: str
    actor: str
    role: str
    event: str


drawn = st.builds(
    Drawn,
    title=user_text,
    description=user_text,
    service=user_text,
    team=user_text,
    lead=user_text,
    summary=user_text,
    note=user_text,
    actor=user_text,
    role=short_text,
    event=st.one_of(st.sampled_from(EVENTS), short_text),
)


def view(d: Drawn, **overrides: Any) -> IncidentView:
    return make_incident(
        title=d.title,
        description=d.description,
        service_name=d.service,
        team_name=d.team,
        lead_name=d.lead or None,
        resolution_summary=d.summary or None,
        **overrides,
    )


def notification(d: Drawn, event: str | None = None) -> Notification:
    """Events are IMAS's vocabulary, not user text: an unknown one becomes ``created``."""
    event = event or (d.event if d.event in EVENTS else "created")
    return Notification(event, view(d), text=d.note or None, actor=d.actor or None)


# -- Slack: every builder, and the other Slack payloads --------------------------------

sb = slack_blocks
# builder name -> payload from drawn user text. Functions that take no user text are in
# SLACK_NOT_BUILDERS with the reason.
SLACK_BUILDERS: dict[str, Callable[[Drawn], Any]] = {
    "plain": lambda d: sb.plain(d.title),
    "button": lambda d: sb.button(d.title, "a", d.note, url=BASE.incident_url),
    "option": lambda d: sb.option(d.service, d.service),
    "fallback_text": lambda d: sb.fallback_text(view(d)),
    "quick_links": lambda d: [
        sb.quick_links(view(d)),
        sb.quick_links(view(d, lid_url=None, runbook_url=None, war_room_channel_id=None)),
    ],
    "action_buttons": lambda d: sb.action_buttons(view(d)),
    "announcement_blocks": lambda d: [
        sb.announcement_blocks(view(d, status=status)) for status in ("TRIGGERED", "RESOLVED")
    ],
    "war_room_summary_blocks": lambda d: sb.war_room_summary_blocks(view(d)),
    "event_line": lambda d: [
        sb.event_line(event, view(d), d.note, d.actor) for event in (*EVENTS, d.event)
    ],
    "dm_blocks": lambda d: sb.dm_blocks(sb.event_line(d.event, view(d), d.note, d.actor), view(d)),
    "declare_modal": lambda d: sb.declare_modal(
        services=[d.service, d.team],
        scopes=[d.team],
        lead_user_id=USER,
        private_metadata=d.note,
        title=d.title,
        description=d.description,
    ),
    "incident_list_line": lambda d: sb.incident_list_line(
        short_id=SHORT_ID,
        title=d.title,
        severity="SEV1_CRITICAL",
        status="TRIGGERED",
        service_name=d.service,
        war_room_channel_id=CHANNEL,
    ),
    "incident_list_text": lambda d: [
        sb.incident_list_text(
            [
                sb.incident_list_line(
                    short_id=SHORT_ID,
                    title=d.title,
                    severity="SEV2_HIGH",
                    status="ACKNOWLEDGED",
                    service_name=d.service,
                )
            ],
            d.team,
        ),
        sb.incident_list_text([], d.team),
    ],
    "incident_status_text": lambda d: sb.incident_status_text(
        short_id=SHORT_ID,
        title=d.title,
        severity="SEV1_CRITICAL",
        status="TRIGGERED",
        service_name=d.service,
        lead=d.lead or None,
        lid_url=BASE.lid_url,
    ),
    "oncall_line": lambda d: [
        sb.oncall_line(d.team, USER, d.lead),
        sb.oncall_line(d.team, None, d.lead or None),
        sb.oncall_line(d.team, d.actor, d.lead),  # not a user id: never a mention
    ],
    "declared_text": lambda d: sb.declared_text(SHORT_ID, d.title, "SEV1_CRITICAL"),
    "who_text": lambda d: [sb.who_text(USER, d.actor), sb.who_text(d.actor, d.actor)],
    "when_text": lambda d: sb.when_text(WHEN),
    "war_room_ready_text": lambda d: [
        sb.war_room_ready_text(SHORT_ID, CHANNEL),
        sb.war_room_ready_text(d.title, d.note),  # not ids: plain text, never markup
    ],
    "state_change_line": lambda d: [
        sb.state_change_line(
            kind="status", actor_user_id=USER, actor_label=d.actor, at=WHEN, after="RESOLVED"
        ),
        sb.state_change_line(
            kind="status", actor_user_id=d.actor, actor_label=d.actor, at=WHEN, after=d.title
        ),
        sb.state_change_line(
            kind="severity",
            actor_user_id=None,
            actor_label=d.actor,
            at=WHEN,
            before=d.title,
            after=d.note,
        ),
        sb.state_change_line(
            kind="role",
            actor_user_id=USER,
            actor_label=d.actor,
            at=WHEN,
            role=d.role,
            holder_user_id=d.lead,
            holder_label=d.lead,
        ),
    ],
    "reminder_text": lambda d: sb.reminder_text(view(d), 95),
    "reminder_blocks": lambda d: sb.reminder_blocks(view(d), None),
    "escalation_here_text": lambda d: sb.escalation_here_text(view(d), 15),
    "role_dm_text": lambda d: sb.role_dm_text(view(d), d.role, d.summary, d.actor),
    "note_text": lambda d: sb.note_text(d.actor, d.note),
    "status_update_text": lambda d: sb.status_update_text(d.actor, d.note),
    "final_summary_text": lambda d: [
        sb.final_summary_text(view(d), 42, d.lead),
        sb.final_summary_text(view(d), None, None),
    ],
    "home_incident_block": lambda d: sb.home_incident_block(view(d, private=True)),
    "home_view": lambda d: sb.home_view([view(d)], [view(d, war_room_channel_id=None)]),
}
SLACK_NOT_BUILDERS = {"snooze_action_id": "builds an action id from an int"}
# Slack payloads built outside slack_blocks.
OTHER_SLACK_PAYLOADS: dict[str, Callable[[Drawn], Any]] = {
    "webhook.slack_webhook_payload": lambda d: slack_webhook_payload(notification(d)),
    "bot.steps.topic_for": lambda d: topic_for(view(d)),
}
# The only builder that may @here a channel, on purpose, once, at the start.
HERE_ALLOWED = {"escalation_here_text"}

# Keys Slack does not render as mrkdwn (ids, values, URLs, raw input values).
NOT_RENDERED = {
    "action_id",
    "block_id",
    "callback_id",
    "value",
    "url",
    "private_metadata",
    "initial_value",
    "initial_user",
    "style",
    "type",
}


def rendered_strings(payload: Any) -> Iterator[str]:
    """Every string Slack parses as mrkdwn/``text`` (plain_text objects are not parsed)."""
    if isinstance(payload, str):
        yield payload
    elif isinstance(payload, dict):
        if payload.get("type") == "plain_text":
            return
        for key, value in payload.items():
            if key not in NOT_RENDERED:
                yield from rendered_strings(value)
    elif isinstance(payload, list | tuple):
        for value in payload:
            yield from rendered_strings(value)


def mrkdwn_objects(payload: Any) -> Iterator[dict[str, Any]]:
    if isinstance(payload, dict):
        if payload.get("type") == "mrkdwn":
            yield payload
        for value in payload.values():
            yield from mrkdwn_objects(value)
    elif isinstance(payload, list | tuple):
        for value in payload:
            yield from mrkdwn_objects(value)


def assert_slack_safe(name: str, payload: Any) -> None:
    for text in rendered_strings(payload):
        if name in HERE_ALLOWED:
            assert text.startswith("<!here> ")
            text = text.removeprefix("<!here> ")
        rest = ALLOWED_SLACK_TOKEN.sub("", text)
        assert "<" not in rest, (name, text[:300])
        assert not ENTITY.search(text), (name, text[:300])
        assert len(text) <= 3000, (name, len(text))
    for obj in mrkdwn_objects(payload):
        assert len(obj["text"]) <= 3000, (name, len(obj["text"]))


def public_functions(module: Any) -> set[str]:
    return {
        name
        for name, fn in inspect.getmembers(module, inspect.isfunction)
        if fn.__module__ == module.__name__ and not name.startswith("_")
    }


def test_every_builder_is_in_a_table():
    assert public_functions(slack_blocks) == set(SLACK_BUILDERS) | set(SLACK_NOT_BUILDERS)
    assert public_functions(messages) == set(MESSAGE_BUILDERS) | set(MESSAGE_NOT_BUILDERS)


PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("name", sorted(SLACK_BUILDERS))
@PROPERTY
@given(d=drawn)
def test_slack_builders_escape_user_text(name, d):
    assert_slack_safe(name, SLACK_BUILDERS[name](d))


@pytest.mark.parametrize("name", sorted(OTHER_SLACK_PAYLOADS))
@PROPERTY
@given(d=drawn)
def test_other_slack_payloads_escape_user_text(name, d):
    payload = OTHER_SLACK_PAYLOADS[name](d)
    assert_slack_safe(name, payload)
    if name == "bot.steps.topic_for":
        assert len(payload) <= 250 and "\n" not in payload


def test_slack_hostile_examples_show_as_text():
    hostile = Drawn(
        title="<!channel> db down",
        description="see <https://evil.example|runbook> & <@U123>",
        service="<#C123>",
        team="<!subteam^S123>",
        lead="<!everyone>",
        summary="<!here>",
        note="<!channel>",
        actor="<@U999>",
        role="lead",
        event="resolved",
    )
    blocks = json.dumps(sb.announcement_blocks(view(hostile)))
    assert "&lt;!channel&gt; db down" in sb.fallback_text(view(hostile))
    assert "&lt;https://evil.example|runbook&gt; &amp; &lt;@U123&gt;" in blocks
    assert f"<{BASE.runbook_url}|Runbook>" in blocks and f"<#{CHANNEL}>" in blocks
    assert sb.note_text("<@U999>", "<!channel>") == "📝 *Note* by &lt;@U999&gt;:\n>&lt;!channel&gt;"


# -- messages.py: each builder's output is safe for the targets it feeds ---------------


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.hrefs += [value or "" for key, value in attrs if key == "href"]


HTML_TAGS = {"html", "head", "meta", "body", "div", "h2", "h3", "table", "tr", "th", "td"}
HTML_TAGS |= {"p", "br", "ul", "li", "a"}


def single_line(text: str) -> None:
    """No control character, line break or line/paragraph separator."""
    bad = [c for c in text if unicodedata.category(c) in ("Cc", "Zl", "Zp")]
    assert not bad, repr(text[:200])


def check_html(text: str) -> None:
    parser = _Tags()
    parser.feed(text)
    assert set(parser.tags) <= HTML_TAGS, parser.tags
    assert set(parser.hrefs) <= URLS


def check_sms(text: str) -> None:
    assert len(text) <= messages.SMS_LIMIT
    single_line(text)


def check_plain_body(text: str) -> None:
    assert all(c in "\n\t" or c >= " " for c in text if ord(c) < 32 or ord(c) == 127)
    assert "\x7f" not in text and "\r" not in text


def check_template_fields(fields: dict[str, str]) -> None:
    doc = render_template('{"t": "$title", "b": "$body", "s": "$summary"}', fields)
    assert json.loads(doc) == {"t": fields["title"], "b": fields["body"], "s": fields["summary"]}
    for key in ("summary", "summary_emoji", "lead", "sms"):
        single_line(fields[key])


def check_json(value: Any) -> None:
    assert json.loads(json.dumps(value)) == value


def check_facts(pairs: list[tuple[str, str]]) -> None:
    for _label, value in pairs:
        single_line(value)


# builder name -> (output from drawn user text, check for the targets it feeds)
MESSAGE_BUILDERS: dict[str, tuple[Callable[[Drawn], Any], Callable[[Any], None]]] = {
    "summary_line": (lambda d: messages.summary_line(notification(d)), single_line),
    "event_label": (lambda d: messages.event_label(one_line(d.event)), single_line),
    "lead_display": (lambda d: messages.lead_display(view(d)), single_line),
    "facts": (lambda d: messages.facts(notification(d)), check_facts),
    "text_body": (lambda d: messages.text_body(notification(d)), check_plain_body),
    "html_body": (lambda d: messages.html_body(notification(d)), check_html),
    "sms_text": (lambda d: messages.sms_text(notification(d)), check_sms),
    "template_fields": (lambda d: messages.template_fields(notification(d)), check_template_fields),
    "incident_dict": (lambda d: messages.incident_dict(view(d)), check_json),
    # Returns the user's words verbatim: every consumer escapes them (Slack webhook,
    # Discord, Teams, HTML) or keeps them plain (text_body, SMS), checked above.
    "extra_text": (lambda d: messages.extra_text(notification(d)), lambda _text: None),
}
MESSAGE_NOT_BUILDERS = {
    "severity_short": "from the severity enum",
    "severity_color": "from the severity enum",
    "truncate": "a string utility, no target",
    "iso_utc": "a datetime",
    "links": "IMAS's own URLs",
    "text_heading": "from the event name, a fixed table",
    "is_web_url": "a predicate",
    "validate_http_url": "config validation",
}


@pytest.mark.parametrize("name", sorted(MESSAGE_BUILDERS))
@PROPERTY
@given(d=drawn)
def test_message_builders_are_safe_for_their_targets(name, d):
    build, check = MESSAGE_BUILDERS[name]
    check(build(d))


# -- Discord ---------------------------------------------------------------------------

SEVERITY_TAG = re.compile(r"\[SEV\d_[A-Z]+\]")  # IMAS's own "[SEV1_CRITICAL]"
MASKED_OPEN = re.compile(r"\[Open\]\((?P<url>[^)\s]*)\)")


def unescaped(text: str, char: str) -> bool:
    """True when ``char`` occurs in ``text`` without a backslash escaping it."""
    return re.search(r"(?<!\\)(?:\\\\)*" + re.escape(char), text) is not None


def discord_strings(payload: dict[str, Any]) -> Iterator[str]:
    (embed,) = payload["embeds"]
    yield embed["title"]
    yield embed.get("description", "")
    for field in embed["fields"]:
        yield field["name"]
        yield field["value"]


@PROPERTY
@given(d=drawn)
def test_discord_payload_never_pings_nor_links_user_text(d):
    payload = discord_payload(notification(d))
    assert payload["allowed_mentions"] == {"parse": []}
    for text in discord_strings(payload):
        assert not re.search(r"@(everyone|here)", text, re.IGNORECASE), text[:200]
        rest = MASKED_OPEN.sub("", SEVERITY_TAG.sub("", text, count=1))
        for match in MASKED_OPEN.finditer(text):
            assert match["url"] in URLS
        for char in "[]<":
            assert not unescaped(rest.replace("\\\\", ""), char), (char, text[:200])


def test_discord_example():
    d = Drawn(
        title="@everyone [runbook](https://evil.example)",
        description="<@123> @here see [x](https://evil.example)",
        service="svc",
        team="t",
        lead="l",
        summary="",
        note="",
        actor="",
        role="",
        event="created",
    )
    payload = discord_payload(notification(d))
    assert payload["allowed_mentions"] == {"parse": []}
    embed = payload["embeds"][0]
    assert f"@{ZWSP}everyone \\[runbook\\](https://evil.example)" in embed["title"]
    assert embed["description"] == f"\\<@123> @{ZWSP}here see \\[x\\](https://evil.example)"
    assert "@everyone" not in json.dumps(payload, ensure_ascii=False)


# -- Teams -----------------------------------------------------------------------------


def card_strings(card: dict[str, Any]) -> Iterator[str]:
    for element in card["body"]:
        if element["type"] == "TextBlock":
            yield element["text"]
        for fact in element.get("facts", []):
            yield fact["value"]


@PROPERTY
@given(d=drawn)
def test_teams_card_breaks_links_and_mentions_of_user_text(d):
    card = adaptive_card(notification(d))
    for text in card_strings(card):
        assert not re.search(r"\](?!\u200b)", SEVERITY_TAG.sub("", text, count=1)), text[:200]
        assert not re.search(r"<(?!\u200b)", text), text[:200]
    assert {a["url"] for a in card["actions"]} <= URLS


def test_teams_example():
    n = Notification(
        "status_update",
        make_incident(description="<at>Bob</at> see [runbook](https://evil.example)"),
        text="[x][1]\n\n[1]: https://evil.example",
    )
    card = teams_message(n)["attachments"][0]["content"]
    texts = list(card_strings(card))
    assert texts[0].startswith("🔴 [SEV1_CRITICAL] INC-A1B2C3")  # IMAS's own text untouched
    blob = "\n".join(texts)
    assert "<at>" not in blob and "](" not in blob and "][" not in blob and "]:" not in blob
    assert "Bob" in blob and "https://evil.example" in blob  # still readable


# -- ntfy, SMS, e-mail -----------------------------------------------------------------


def test_ntfy_title_is_one_line_and_message_plain():
    d = replace(
        Drawn(*([""] * 10)),
        title="db\r\ndown\x00 X-Markdown: yes",
        service="svc\nname",
        description="[x](https://evil.example)\x1b[31m",
        event="created",
    )
    body = ntfy_message(notification(d), "topic", None)
    assert "\r" not in body["title"] and "\n" not in body["title"] and "\x00" not in body["title"]
    assert body["title"].startswith("[SEV1_CRITICAL] INC-A1B2C3 db down X-Markdown: yes")
    assert "markdown" not in body
    assert all("\n" not in tag for tag in body["tags"])
    assert "\x1b" not in body["message"] and "\x00" not in body["message"]
    assert "[x](https://evil.example)" in body["message"]  # plain text, shown as typed


def test_sms_is_plain_one_line():
    d = replace(
        Drawn(*([""] * 10)),
        title="db\r\ndown\x07\x1b[31m",
        service="svc",
        note="fixed\nby\tBob",
        event="resolved",
    )
    text, _coding = sms_body_text(notification(d))
    assert all(ord(c) >= 32 and ord(c) != 127 for c in text), repr(text)
    assert "db down" in text and "fixed by Bob" in text


@pytest.mark.parametrize(
    "title",
    [
        "db down\r\nBcc: evil@example.com",
        "db down\nSubject: second",
        "db down\rX-Injected: 1",
        "ünïcödé \u2028 line\x00",
    ],
)
def test_email_subject_cannot_inject_headers(title):
    provider = EmailProvider(
        name="Mail",
        config=EmailConfig(host="localhost", from_email="imas@example.com"),
        http=HttpClient(),
    )
    n = Notification("created", make_incident(title=title, description="<script>x</script>"))
    msg = provider.build_message(n, ["sre@example.com"], idempotency_key="k")
    raw = msg.as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert len(parsed.get_all("Subject")) == 1
    assert parsed.get_all("Bcc") is None and parsed.get_all("X-Injected") is None
    assert "\n" not in str(parsed["Subject"]) and "\r" not in str(parsed["Subject"])
    assert str(parsed["Subject"]).startswith("🔴 [SEV1_CRITICAL] INC-A1B2C3 db down") or (
        "ünïcödé line" in str(parsed["Subject"])
    )
    html = parsed.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html


# -- the helpers -----------------------------------------------------------------------


def test_slack_escape_is_slacks_three_characters():
    assert slack_escape("<!channel> & <@U1> > *b*") == "&lt;!channel&gt; &amp; &lt;@U1&gt; &gt; *b*"
    assert slack_escape(None) == ""


@given(text=user_text)
def test_slack_unescape_reverses_escape(text):
    assert slack_unescape(slack_escape(text)) == text


def test_mentions_and_channel_links_are_built_from_ids_only():
    assert mention_user("U0ALICE01") == "<@U0ALICE01>" and mention_user("W123") == "<@W123>"
    assert channel_link("C0WARROOM01") == "<#C0WARROOM01>" and channel_link("G1") == "<#G1>"
    for bad in ("", "u123", "U123>", "!channel", "U1|x", "<!here>", "alice@example.com"):
        with pytest.raises(ValueError):
            mention_user(bad)
        with pytest.raises(ValueError):
            channel_link(bad)


@pytest.mark.parametrize(
    "url,label,expected",
    [
        ("https://x.example/a?b=1&c=2", "Runbook", "<https://x.example/a?b=1&c=2|Runbook>"),
        ("https://x.example/a|b>c<d e", "R", "<https://x.example/a%7Cb%3Ec%3Cd%20e|R>"),
        ("https://x.example/", "<!channel> & co", "<https://x.example/|&lt;!channel&gt; &amp; co>"),
        ("mailto:sre@example.com", "mail", "<mailto:sre@example.com|mail>"),
        ("javascript:alert(1)", "Runbook", "Runbook: javascript:alert(1)"),
        ("/relative", "<x>", "&lt;x&gt;: /relative"),
        (None, "Runbook", "Runbook"),
    ],
)
def test_link_escapes_label_and_refuses_unsafe_urls(url, label, expected):
    assert link(url, label) == expected


@given(text=user_text, limit=st.integers(0, 400))
@settings(max_examples=200, deadline=None)
def test_cuts_never_split_an_escape_sequence(text, limit):
    fitted = slack_fit(text, limit)
    assert len(fitted) <= limit and not ENTITY.search(fitted)
    composed = slack_truncate(f"<#{CHANNEL}> {slack_escape(text)} <{BASE.incident_url}|x>", limit)
    assert len(composed) <= max(limit, 0) and not ENTITY.search(composed)
    assert "<" not in ALLOWED_SLACK_TOKEN.sub("", composed.replace(f"<{BASE.incident_url}|x>", ""))
    for escape in (discord_escape, teams_escape):
        assert len(fit(text, limit, escape)) <= limit


def test_fit_keeps_text_that_fits_and_cuts_before_escaping():
    assert slack_fit("a & b", 9) == "a &amp; b"
    assert slack_fit("a & b & c", 9) == "a &amp;…"
    assert slack_truncate("ab &amp; cd", 6) == "ab …"
    assert slack_truncate(f"x <#{CHANNEL}> y", 8) == "x …"
