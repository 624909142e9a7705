"""FakeSlack driven through the real slack_sdk WebClient over a real socket."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from imas_standins.slack_api import HANG_GUARD_SECONDS, FakeSlack
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "declare",
    "private_metadata": "ctx-1",
    "title": {"type": "plain_text", "text": "Declare incident"},
    "submit": {"type": "plain_text", "text": "Declare"},
    "blocks": [
        {
            "type": "input",
            "block_id": "title",
            "label": {"type": "plain_text", "text": "Title"},
            "element": {"type": "plain_text_input", "action_id": "title_input"},
        }
    ],
}
SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "hello"}}


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(trigger_ttl=0.3) as running:
        yield running


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token=fake.bot_token, base_url=fake.url)


def error_of(excinfo: pytest.ExceptionInfo[SlackApiError]) -> str:
    return str(excinfo.value.response["error"])


# ----------------------------------------------------------------------------- basics


def test_url_has_trailing_slash_and_auth_test_answers(fake: FakeSlack, client: WebClient) -> None:
    assert fake.url.startswith("http://127.0.0.1:") and fake.url.endswith("/api/")
    answer = client.auth_test()
    assert answer["user_id"] == fake.bot_user_id
    assert answer["team_id"] == "T0IMAS001"
    assert answer["bot_id"] == fake.bot_id
    assert fake.wait_for("auth.test").method == "auth.test"


def test_wrong_token_is_invalid_auth_and_missing_token_not_authed(fake: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        WebClient(token="xoxb-wrong", base_url=fake.url).auth_test()
    assert error_of(excinfo) == "invalid_auth"
    assert excinfo.value.response.status_code == 200
    with pytest.raises(SlackApiError) as excinfo:
        WebClient(base_url=fake.url).auth_test()
    assert error_of(excinfo) == "not_authed"
    fake.valid_tokens.add("xoxb-rotated")
    assert WebClient(token="xoxb-rotated", base_url=fake.url).auth_test()["ok"]


def test_unknown_method_is_404(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.api_call("chat.teleport", json={"channel": "C1"})
    assert error_of(excinfo) == "unknown_method"
    assert excinfo.value.response.status_code == 404


@pytest.mark.parametrize("encoding", ["json", "form", "query"])
def test_all_three_encodings_are_accepted(
    fake: FakeSlack, client: WebClient, encoding: str
) -> None:
    args = {"channel": "C0GENERAL1", "text": f"via {encoding}", "team_id": "T0IMAS001"}
    if encoding == "json":
        client.api_call("chat.postMessage", json=args)
    elif encoding == "form":
        client.api_call("chat.postMessage", data=args)
    else:
        client.api_call("chat.postMessage", http_verb="GET", params=args)
    assert fake.messages("C0GENERAL1")[-1]["text"] == f"via {encoding}"
    assert fake.wait_for("chat.postMessage", text=f"via {encoding}").args["team_id"] == "T0IMAS001"


def test_token_in_form_body_is_accepted(fake: FakeSlack) -> None:
    answer = requests.post(
        fake.url + "conversations.info",
        data={"token": fake.bot_token, "channel": "C0GENERAL1"},
        timeout=5,
    )
    assert answer.status_code == 200
    assert answer.json()["channel"]["name"] == "general"


def test_bad_json_body_is_refused(fake: FakeSlack) -> None:
    answer = requests.post(
        fake.url + "chat.postMessage",
        data=b"{not json",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {fake.bot_token}"},
        timeout=5,
    )
    assert answer.json() == {"ok": False, "error": "invalid_json"}


# ----------------------------------------------------------------------------- channels


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "invalid_name_required"),
        ("a" * 81, "invalid_name_maxlength"),
        ("Has-Caps", "invalid_name_specials"),
        ("with space", "invalid_name_specials"),
        ("dot.name", "invalid_name_specials"),
        ("--__", "invalid_name_punctuation"),
    ],
)
def test_channel_name_rules(client: WebClient, name: str, error: str) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.conversations_create(name=name)
    assert error_of(excinfo) == error


def test_create_channel_then_name_taken_even_when_archived(
    fake: FakeSlack, client: WebClient
) -> None:
    created = client.conversations_create(name="inc-2026-0001", is_private=True)["channel"]
    assert created["id"].startswith("C") and len(created["id"]) == 11
    assert created["name"] == "inc-2026-0001"
    assert created["is_private"] is True
    assert created["creator"] == fake.bot_user_id
    assert created["is_member"] is True
    assert isinstance(created["created"], int)
    assert fake.channel_by_name("inc-2026-0001") is not None
    client.conversations_archive(channel=created["id"])
    with pytest.raises(SlackApiError) as excinfo:
        client.conversations_create(name="inc-2026-0001")
    assert error_of(excinfo) == "name_taken"
    with pytest.raises(SlackApiError) as excinfo:
        client.conversations_archive(channel=created["id"])
    assert error_of(excinfo) == "already_archived"
    assert client.conversations_unarchive(channel=created["id"])["ok"]


def test_invite_rules(fake: FakeSlack, client: WebClient) -> None:
    fake.add_user("U0BOB0001", "bob")
    fake.add_user("U0CAROL01", "carol")
    cid = client.conversations_create(name="inc-invite")["channel"]["id"]
    for users, error in [
        ("U0NOBODY1", "user_not_found"),
        (fake.bot_user_id, "cant_invite_self"),
    ]:
        with pytest.raises(SlackApiError) as excinfo:
            client.conversations_invite(channel=cid, users=users)
        assert error_of(excinfo) == error
    client.conversations_invite(channel=cid, users="U0BOB0001")
    # Slack only refuses when every user given is already in the channel
    client.conversations_invite(channel=cid, users=["U0BOB0001", "U0CAROL01"])
    with pytest.raises(SlackApiError) as excinfo:
        client.conversations_invite(channel=cid, users="U0BOB0001,U0CAROL01")
    assert error_of(excinfo) == "already_in_channel"
    members = client.conversations_members(channel=cid)["members"]
    assert set(members) == {fake.bot_user_id, "U0BOB0001", "U0CAROL01"}
    with pytest.raises(SlackApiError) as excinfo:
        client.conversations_invite(channel="C0MISSING00", users="U0BOB0001")
    assert error_of(excinfo) == "channel_not_found"
    outside = fake.add_channel("outside", bot_member=False)
    with pytest.raises(SlackApiError) as excinfo:
        client.conversations_invite(channel=outside, users="U0BOB0001")
    assert error_of(excinfo) == "not_in_channel"
    client.conversations_archive(channel=cid)
    with pytest.raises(SlackApiError) as excinfo:
        client.conversations_invite(channel=cid, users="U0ALICE01")
    assert error_of(excinfo) == "is_archived"


def test_topic_purpose_rename_join_and_list(fake: FakeSlack, client: WebClient) -> None:
    cid = client.conversations_create(name="inc-topic")["channel"]["id"]
    assert client.conversations_setTopic(channel=cid, topic="SEV1: db down")["ok"]
    client.conversations_setPurpose(channel=cid, purpose="Incident room")
    info = client.conversations_info(channel=cid, include_num_members=True)["channel"]
    assert info["topic"]["value"] == "SEV1: db down"
    assert info["purpose"]["value"] == "Incident room"
    assert info["num_members"] == 1
    with pytest.raises(SlackApiError) as excinfo:
        client.conversations_setTopic(channel=cid, topic="x" * 251)
    assert error_of(excinfo) == "too_long"
    renamed = client.conversations_rename(channel=cid, name="inc-topic-resolved")["channel"]
    assert renamed["name"] == "inc-topic-resolved"
    assert renamed["previous_names"] == ["inc-topic"]

    public = fake.add_channel("public-room", bot_member=False)
    with pytest.raises(SlackApiError) as excinfo:
        client.conversations_setTopic(channel=public, topic="t")
    assert error_of(excinfo) == "not_in_channel"
    client.conversations_join(channel=public)
    client.conversations_setTopic(channel=public, topic="t")

    for i in range(5):
        fake.add_channel(f"page-{i}")
    names: list[str] = []
    cursor = None
    while True:
        page = client.conversations_list(limit=3, cursor=cursor, exclude_archived=True)
        names += [c["name"] for c in page["channels"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert {"general", "inc-topic-resolved", "public-room", "page-4"} <= set(names)
    assert len(names) == len(set(names))


def test_private_channel_without_the_bot_does_not_exist(fake: FakeSlack, client: WebClient) -> None:
    secret = fake.add_channel("secret", is_private=True, bot_member=False, members=["U0ALICE01"])
    with pytest.raises(SlackApiError) as excinfo:
        client.conversations_info(channel=secret)
    assert error_of(excinfo) == "channel_not_found"
    listed = client.conversations_list(types="public_channel,private_channel")["channels"]
    assert secret not in {c["id"] for c in listed}


# ----------------------------------------------------------------------------- chat


def test_post_message_membership_and_errors(fake: FakeSlack, client: WebClient) -> None:
    outside = fake.add_channel("outside", bot_member=False)
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel=outside, text="hi")
    assert error_of(excinfo) == "not_in_channel"
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="C0MISSING00", text="hi")
    assert error_of(excinfo) == "channel_not_found"
    with pytest.raises(SlackApiError) as excinfo:
        client.api_call("chat.postMessage", json={"channel": "C0GENERAL1"})
    assert error_of(excinfo) == "no_text"

    posted = client.chat_postMessage(
        channel="C0GENERAL1",
        text="Incident declared",
        blocks=[SECTION],
        metadata={"event_type": "incident_declared", "event_payload": {"id": 7}},
    )
    assert posted["channel"] == "C0GENERAL1"
    assert posted["message"]["text"] == "Incident declared"
    assert posted["message"]["blocks"][0]["block_id"]  # Slack fills in block ids
    stored = fake.messages("C0GENERAL1")[-1]
    assert stored["ts"] == posted["ts"]
    assert stored["user"] == fake.bot_user_id
    assert stored["metadata"]["event_payload"] == {"id": 7}

    archived = client.conversations_create(name="inc-archived")["channel"]["id"]
    client.conversations_archive(channel=archived)
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel=archived, text="hi")
    assert error_of(excinfo) == "is_archived"


def test_threads_history_metadata_and_permalink(fake: FakeSlack, client: WebClient) -> None:
    root = client.chat_postMessage(
        channel="C0GENERAL1", text="root", metadata={"event_type": "e", "event_payload": {}}
    )["ts"]
    reply = client.chat_postMessage(channel="C0GENERAL1", text="reply", thread_ts=root)["ts"]
    human = fake.post_as_user("C0GENERAL1", "U0ALICE01", "human reply", thread_ts=root)
    history = client.conversations_history(channel="C0GENERAL1")["messages"]
    assert [m["ts"] for m in history] == [root]  # replies stay in the thread
    assert history[0]["reply_count"] == 2
    assert "metadata" not in history[0]
    with_meta = client.conversations_history(channel="C0GENERAL1", include_all_metadata=True)
    assert with_meta["messages"][0]["metadata"]["event_type"] == "e"
    thread = client.conversations_replies(channel="C0GENERAL1", ts=root)["messages"]
    assert [m["ts"] for m in thread] == [root, reply, human]
    assert thread[2]["user"] == "U0ALICE01"
    link = client.chat_getPermalink(channel="C0GENERAL1", message_ts=root)["permalink"]
    assert link == f"https://fake-slack.local/archives/C0GENERAL1/p{root.replace('.', '')}"


def test_update_delete_and_ephemeral(fake: FakeSlack, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_update(channel="C0GENERAL1", ts="1234567890.000001", text="x")
    assert error_of(excinfo) == "message_not_found"
    human = fake.post_as_user("C0GENERAL1", "U0ALICE01", "mine")
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_update(channel="C0GENERAL1", ts=human, text="hijack")
    assert error_of(excinfo) == "cant_update_message"

    root = client.chat_postMessage(channel="C0GENERAL1", text="root")["ts"]
    reply = client.chat_postMessage(channel="C0GENERAL1", text="v1", thread_ts=root)["ts"]
    updated = client.chat_update(channel="C0GENERAL1", ts=reply, text="v2", blocks=[SECTION])
    assert updated["ts"] == reply and updated["text"] == "v2"
    stored = next(m for m in fake.messages("C0GENERAL1") if m["ts"] == reply)
    assert stored["thread_ts"] == root and stored["edited"]["user"] == fake.bot_user_id

    eph = client.chat_postEphemeral(channel="C0GENERAL1", user="U0ALICE01", text="only you")
    assert fake.ephemerals[-1]["ts"] == eph["message_ts"]
    assert fake.ephemerals[-1]["user"] == "U0ALICE01"
    fake.add_user("U0BOB0001", "bob")
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postEphemeral(channel="C0GENERAL1", user="U0BOB0001", text="x")
    assert error_of(excinfo) == "user_not_in_channel"

    client.chat_delete(channel="C0GENERAL1", ts=reply)
    assert reply not in {m["ts"] for m in fake.messages("C0GENERAL1")}


def test_dm_by_user_id_and_conversations_open(fake: FakeSlack, client: WebClient) -> None:
    posted = client.chat_postMessage(channel="U0ALICE01", text="psst")
    assert posted["channel"].startswith("D")
    opened = client.conversations_open(users="U0ALICE01")
    assert opened["channel"]["id"] == posted["channel"] == fake.dm_channel("U0ALICE01")
    assert opened["already_open"] is True
    assert fake.messages(posted["channel"])[0]["text"] == "psst"
    with pytest.raises(SlackApiError) as excinfo:
        client.conversations_open(users="U0NOBODY1")
    assert error_of(excinfo) == "user_not_found"


def test_users(fake: FakeSlack, client: WebClient) -> None:
    fake.add_user("U0BOB0001", "bob", email="Bob@Example.com", real_name="Bob B")
    user = client.users_info(user="U0BOB0001")["user"]
    assert user["real_name"] == "Bob B" and user["profile"]["email"] == "Bob@Example.com"
    assert client.users_lookupByEmail(email="bob@example.com")["user"]["id"] == "U0BOB0001"
    with pytest.raises(SlackApiError) as excinfo:
        client.users_lookupByEmail(email="nobody@example.com")
    assert error_of(excinfo) == "users_not_found"
    with pytest.raises(SlackApiError) as excinfo:
        client.users_info(user="U0NOBODY1")
    assert error_of(excinfo) == "user_not_found"
    ids = {m["id"] for m in client.users_list()["members"]}
    assert {"U0BOB0001", "U0ALICE01", fake.bot_user_id} <= ids


# ----------------------------------------------------------------------------- pins etc.


def test_pins_are_idempotent_with_slack_errors(fake: FakeSlack, client: WebClient) -> None:
    ts = client.chat_postMessage(channel="C0GENERAL1", text="pin me")["ts"]
    assert client.pins_add(channel="C0GENERAL1", timestamp=ts)["ok"]
    with pytest.raises(SlackApiError) as excinfo:
        client.pins_add(channel="C0GENERAL1", timestamp=ts)
    assert error_of(excinfo) == "already_pinned"
    with pytest.raises(SlackApiError) as excinfo:
        client.pins_add(channel="C0GENERAL1", timestamp="1111111111.000001")
    assert error_of(excinfo) == "message_not_found"
    items = client.pins_list(channel="C0GENERAL1")["items"]
    assert [i["message"]["ts"] for i in items] == [ts]
    client.pins_remove(channel="C0GENERAL1", timestamp=ts)
    with pytest.raises(SlackApiError) as excinfo:
        client.pins_remove(channel="C0GENERAL1", timestamp=ts)
    assert error_of(excinfo) == "not_pinned"
    outside = fake.add_channel("outside", bot_member=False)
    human = fake.post_as_user(outside, "U0ALICE01", "hello")
    with pytest.raises(SlackApiError) as excinfo:
        client.pins_add(channel=outside, timestamp=human)
    assert error_of(excinfo) == "not_in_channel"


def test_bookmarks_and_reactions(fake: FakeSlack, client: WebClient) -> None:
    added = client.bookmarks_add(
        channel_id="C0GENERAL1", title="Doc", type="link", link="https://docs.example/1"
    )["bookmark"]
    assert added["id"].startswith("Bk") and added["type"] == "link"
    with pytest.raises(SlackApiError) as excinfo:
        client.bookmarks_add(channel_id="C0GENERAL1", title="Bad", type="link", link="ftp://x")
    assert error_of(excinfo) == "invalid_link"
    client.bookmarks_edit(channel_id="C0GENERAL1", bookmark_id=added["id"], title="Doc v2")
    listed = client.bookmarks_list(channel_id="C0GENERAL1")["bookmarks"]
    assert [b["title"] for b in listed] == ["Doc v2"]
    client.bookmarks_remove(channel_id="C0GENERAL1", bookmark_id=added["id"])
    assert fake.channel("C0GENERAL1").bookmarks == []

    ts = client.chat_postMessage(channel="C0GENERAL1", text="react")["ts"]
    client.reactions_add(channel="C0GENERAL1", timestamp=ts, name="eyes")
    with pytest.raises(SlackApiError) as excinfo:
        client.reactions_add(channel="C0GENERAL1", timestamp=ts, name="eyes")
    assert error_of(excinfo) == "already_reacted"


# ----------------------------------------------------------------------------- views


def test_trigger_ids_are_single_use_and_expire(fake: FakeSlack, client: WebClient) -> None:
    trigger = fake.new_trigger_id()
    view = client.views_open(trigger_id=trigger, view=MODAL)["view"]
    assert view["id"].startswith("V") and view["hash"]
    assert view["callback_id"] == "declare" and view["private_metadata"] == "ctx-1"
    assert fake.views_opened[-1]["id"] == view["id"] == fake.last_view()["id"]
    with pytest.raises(SlackApiError) as excinfo:
        client.views_open(trigger_id=trigger, view=MODAL)
    assert error_of(excinfo) == "exchanged_trigger_id"
    with pytest.raises(SlackApiError) as excinfo:
        client.views_open(trigger_id="123.456.abc", view=MODAL)
    assert error_of(excinfo) == "invalid_trigger_id"
    late = fake.new_trigger_id()
    time.sleep(0.35)  # fixture ttl is 0.3 s (Slack: 3 s)
    with pytest.raises(SlackApiError) as excinfo:
        client.views_open(trigger_id=late, view=MODAL)
    assert error_of(excinfo) == "expired_trigger_id"


def test_views_update_push_and_publish(fake: FakeSlack, client: WebClient) -> None:
    opened = client.views_open(trigger_id=fake.new_trigger_id(), view=MODAL)["view"]
    changed = {**MODAL, "title": {"type": "plain_text", "text": "Updated"}}
    updated = client.views_update(view_id=opened["id"], hash=opened["hash"], view=changed)["view"]
    assert updated["id"] == opened["id"] and updated["hash"] != opened["hash"]
    with pytest.raises(SlackApiError) as excinfo:
        client.views_update(view_id=opened["id"], hash=opened["hash"], view=changed)
    assert error_of(excinfo) == "hash_conflict"
    with pytest.raises(SlackApiError) as excinfo:
        client.views_update(view_id="V0NOTHERE00", view=changed)
    assert error_of(excinfo) == "not_found"
    pushed = client.views_push(trigger_id=fake.new_trigger_id(), view=MODAL)["view"]
    assert pushed["previous_view_id"] == opened["id"]
    assert pushed["root_view_id"] == opened["id"]
    home = {"type": "home", "blocks": [SECTION]}
    published = client.views_publish(user_id="U0ALICE01", view=home)["view"]
    assert fake.home_views["U0ALICE01"]["id"] == published["id"]


def test_invalid_blocks_are_rejected(fake: FakeSlack, client: WebClient) -> None:
    cases: list[list[dict[str, Any]]] = [
        [{"type": "no_such_block"}],
        [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}],
        [SECTION] * 51,
        [
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "b"},
                        "action_id": "a" * 256,
                    }
                ],
            }
        ],
    ]
    for blocks in cases:
        with pytest.raises(SlackApiError) as excinfo:
            client.chat_postMessage(channel="C0GENERAL1", text="t", blocks=blocks)
        assert error_of(excinfo) == "invalid_blocks"
        assert excinfo.value.response["errors"]
    assert fake.messages("C0GENERAL1") == []
    long_title = {**MODAL, "title": {"type": "plain_text", "text": "x" * 25}}
    with pytest.raises(SlackApiError) as excinfo:
        client.views_open(trigger_id=fake.new_trigger_id(), view=long_title)
    assert error_of(excinfo) == "invalid_blocks"


# ----------------------------------------------------------------------------- faults


def test_ratelimited_injection_is_a_429_with_retry_after(
    fake: FakeSlack, client: WebClient
) -> None:
    fake.inject("chat.postMessage", error="ratelimited", retry_after=7)
    with pytest.raises(SlackApiError) as excinfo:
        client.chat_postMessage(channel="C0GENERAL1", text="x")
    assert excinfo.value.response.status_code == 429
    assert excinfo.value.response.headers["Retry-After"] == "7"
    assert error_of(excinfo) == "ratelimited"
    assert fake.messages("C0GENERAL1") == []
    client.chat_postMessage(channel="C0GENERAL1", text="x")  # consumed: next call works

    fake.inject("chat.postMessage", error="ratelimited", retry_after=0)
    patient = WebClient(
        token=fake.bot_token,
        base_url=fake.url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    patient.chat_postMessage(channel="C0GENERAL1", text="after retry")
    assert fake.count("chat.postMessage") == 4


def test_injections_are_consumed_in_order(fake: FakeSlack, client: WebClient) -> None:
    fake.inject("conversations.create", http_status=500, times=2)
    fake.inject("conversations.create", error="restricted_action")
    for expected in [500, 500]:
        with pytest.raises(SlackApiError) as excinfo:
            client.conversations_create(name="inc-x")
        assert excinfo.value.response.status_code == expected
    with pytest.raises(SlackApiError) as excinfo:
        client.conversations_create(name="inc-x")
    assert excinfo.value.response.status_code == 200 and error_of(excinfo) == "restricted_action"
    assert fake.channel_by_name("inc-x") is None
    client.conversations_create(name="inc-x")


def test_dropped_response_raises_but_the_state_changed(fake: FakeSlack) -> None:
    no_retry = WebClient(token=fake.bot_token, base_url=fake.url, retry_handlers=[])
    fake.inject("chat.postMessage", drop_response=True)
    with pytest.raises((http.client.HTTPException, ConnectionError, urllib.error.URLError)):
        no_retry.chat_postMessage(channel="C0GENERAL1", text="lost answer")
    assert [m["text"] for m in fake.messages("C0GENERAL1")] == ["lost answer"]

    # slack_sdk's default ConnectionErrorRetryHandler re-sends: Slack has no idempotency key
    fake.inject("chat.postMessage", drop_response=True)
    WebClient(token=fake.bot_token, base_url=fake.url).chat_postMessage(
        channel="C0GENERAL1", text="twice"
    )
    assert [m["text"] for m in fake.messages("C0GENERAL1")][-2:] == ["twice", "twice"]


def test_latency_slows_every_call(fake: FakeSlack, client: WebClient) -> None:
    fake.set_latency(0.2)
    started = time.monotonic()
    client.auth_test()
    assert time.monotonic() - started >= 0.2
    fake.set_latency(0)


# ----------------------------------------------------------------------------- observation


def test_wait_for_matches_and_reports_seen_calls(fake: FakeSlack, client: WebClient) -> None:
    client.chat_postMessage(channel="C0GENERAL1", text="one")
    client.chat_postMessage(channel="C0GENERAL1", text="two")
    assert fake.wait_for("chat.postMessage", text="two").args["text"] == "two"
    got = fake.wait_for("chat.postMessage", predicate=lambda c: c.args["text"].startswith("o"))
    assert got.args["text"] == "one"
    assert fake.count("chat.postMessage") == 2
    with pytest.raises(AssertionError, match="chat.postMessage"):
        fake.wait_for("views.open", timeout=0.1)


def test_response_url_records_and_applies_bodies(fake: FakeSlack, client: WebClient) -> None:
    ts = client.chat_postMessage(channel="C0GENERAL1", text="original")["ts"]
    hook = fake.response_url(channel_id="C0GENERAL1", message_ts=ts, user_id="U0ALICE01")
    assert hook.startswith(f"{fake.base}/hooks/")
    answer = requests.post(
        hook, json={"text": "edited", "replace_original": True}, timeout=HANG_GUARD_SECONDS
    )
    assert answer.status_code == 200 and answer.text == "ok"
    assert fake.responses[-1] == {
        "url": hook,
        "body": {"text": "edited", "replace_original": True},
        "at": fake.responses[-1]["at"],
    }
    assert fake.messages("C0GENERAL1")[-1]["text"] == "edited"
    requests.post(
        hook,
        json={"text": "for everyone", "response_type": "in_channel"},
        timeout=HANG_GUARD_SECONDS,
    )
    assert fake.messages("C0GENERAL1")[-1]["text"] == "for everyone"
    requests.post(hook, json={"text": "just you"}, timeout=HANG_GUARD_SECONDS)
    assert fake.ephemerals[-1]["text"] == "just you"
    assert (
        requests.post(f"{fake.base}/hooks/nope", json={}, timeout=HANG_GUARD_SECONDS).status_code
        == 404
    )


def test_bolt_app_accepts_the_fake(fake: FakeSlack) -> None:
    from slack_bolt import App

    app = App(
        client=WebClient(token=fake.bot_token, base_url=fake.url),
        signing_secret="secret",
    )
    assert app.client.base_url == fake.url
    assert fake.count("auth.test") == 1
    assert json.loads(json.dumps(fake.calls[0].args)) == fake.calls[0].args
