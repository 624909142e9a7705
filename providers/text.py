"""Escaping of user- and alert-supplied text for every target IMAS writes to.

Titles, descriptions, notes, summaries, role and person names, service and team names and
alert fields are *data*: whoever holds a webhook token or a Slack seat can put anything in
them. Each target gives some characters a meaning, and this module takes that meaning away:

* **Slack** (``text``, mrkdwn blocks, context elements, topics, App Home, DMs):
  :func:`slack_escape` turns ``&``, ``<`` and ``>`` into ``&amp;``, ``&lt;`` and ``&gt;``,
  exactly as https://api.slack.com/reference/surfaces/formatting#escaping documents, so
  ``<!channel>``, ``<@U123>``, ``<#C123>`` and ``<https://evil|runbook>`` show as text.
  The mentions and links IMAS means to make are built from ids and URLs only, by
  :func:`mention_user`, :func:`channel_link` and :func:`link`. ``plain_text`` objects
  (headers, buttons, options, modal labels) are not parsed by Slack and need no escaping.
  :func:`slack_truncate` cuts mrkdwn without splitting an entity (``&am``) or a ``<...>``
  token, and :func:`slack_fit` escapes a value and cuts it to a length.
* **Discord** (embed title, description, fields): :func:`discord_escape` backslash-escapes
  markdown (``[x](y)`` masked links, ``<@id>`` mentions, formatting) and puts a zero-width
  space after ``@`` in ``@everyone``/``@here``; the webhook body also carries
  ``allowed_mentions: {"parse": []}``.
* **Teams** (Adaptive Card text and facts, which render a markdown subset and no HTML):
  :func:`teams_escape` breaks link syntax (``]``) and tag openers (``<at>``) with a
  zero-width space.
* **Headers and pagers** (e-mail ``Subject``, ntfy ``title``, SMS): :func:`one_line` removes
  control characters and line breaks.

Escaping makes strings longer: cut with the helpers here (``slack_fit``, ``fit``), which
never leave half an escape sequence behind.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from urllib.parse import urlsplit

ELLIPSIS = "…"
ZWSP = "\u200b"

_SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")
_SLACK_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]+$")
_SLACK_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# Characters that would end or split a ``<url|label>`` token, or are not valid in a URL.
_URL_UNSAFE = re.compile(r"[|<>\s\x00-\x1f\x7f]")
# Backslash itself, masked links ``[x](y)`` and ``<...>`` tags (mentions, timestamps,
# emoji, ``<url>``). Formatting (``*``, ``_``...) is left alone: escaping it would break the
# URLs Discord autolinks, and it pings nobody.
_DISCORD_SPECIAL = re.compile(r"([\\\[\]<])")
_DISCORD_PING = re.compile(r"@(everyone|here)", re.IGNORECASE)


# -- Slack ------------------------------------------------------------------------------


def slack_escape(text: str | None) -> str:
    """``text`` with ``&``, ``<``, ``>`` replaced by ``&amp;``, ``&lt;``, ``&gt;`` (Slack's
    documented escaping); None is ``""``. Use it on every user- or alert-supplied string
    placed in Slack ``text``, mrkdwn, context elements or a channel topic."""
    return (text or "").translate(_SLACK_ESCAPES)


def slack_unescape(text: str | None) -> str:
    """The reverse of :func:`slack_escape`, for text Slack sends us already escaped (slash
    command ``text``, message ``text`` of a shortcut or a pin) before it is stored: stored
    text is raw and escaped once, when shown. Mentions (``<@U123>``) stay as written and are
    shown as text later. Modal ``plain_text_input`` values are raw already: not for them."""
    return (text or "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def slack_truncate(mrkdwn: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """Cut Slack mrkdwn to at most ``limit`` characters, ending with ``ellipsis`` when cut.

    The cut never falls inside an entity (``&amp;``, ``&lt;``, ``&gt;``) or inside a
    ``<...>`` token IMAS built (a mention or link): it moves back before it instead.
    """
    if limit <= 0:
        return ""
    if len(mrkdwn) <= limit:
        return mrkdwn
    if limit <= len(ellipsis):
        ellipsis = ""
    head = mrkdwn[: limit - len(ellipsis)]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    opening = head.rfind("<")
    if opening != -1 and ">" not in head[opening:]:
        head = head[:opening]
    return head + ellipsis


def slack_fit(text: str | None, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """:func:`slack_escape` of ``text``, cut so the *escaped* result is <= ``limit``."""
    return fit(text or "", limit, slack_escape, ellipsis)


def mention_user(user_id: str) -> str:
    """``<@U123>``: a mention of a Slack user id (``^[UW][A-Z0-9]+$``); ValueError for
    anything else (a name, an e-mail, a string with markup)."""
    if not _SLACK_USER_ID.match(user_id or ""):
        raise ValueError("not a Slack user id")
    return f"<@{user_id}>"


def is_slack_user_id(value: str | None) -> bool:
    return bool(value and _SLACK_USER_ID.match(value))


def channel_link(channel_id: str) -> str:
    """``<#C123>``: a link to a Slack channel id (``^[CGD][A-Z0-9]+$``); ValueError else."""
    if not _SLACK_CHANNEL_ID.match(channel_id or ""):
        raise ValueError("not a Slack channel id")
    return f"<#{channel_id}>"


def is_slack_channel_id(value: str | None) -> bool:
    return bool(value and _SLACK_CHANNEL_ID.match(value))


def channel_ref(channel_id: str) -> str:
    """:func:`channel_link` for a valid id, else the id as escaped text (never markup)."""
    return channel_link(channel_id) if is_slack_channel_id(channel_id) else slack_escape(channel_id)


def safe_url(url: str | None) -> str | None:
    """``url`` ready for a ``<url|label>`` token: absolute http(s) or ``mailto:``, with
    ``|``, ``<``, ``>``, whitespace and control characters percent-encoded; None when
    ``url`` is anything else (``javascript:``, relative, empty)."""
    if not url:
        return None
    url = url.strip()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if not ((scheme in ("http", "https") and parts.netloc) or (scheme == "mailto" and parts.path)):
        return None
    return _URL_UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), url)


def link(url: str | None, label: str) -> str:
    """``<url|label>`` with ``label`` escaped and ``url`` made token-safe (:func:`safe_url`).

    A URL that is not http(s)/mailto is refused: the result is the escaped text
    ``label: url``, never a link.
    """
    target = safe_url(url)
    if target is None:
        return slack_escape(f"{label}: {url}" if url else label)
    return f"<{target}|{slack_escape(label)}>"


# -- Discord, Teams ---------------------------------------------------------------------


def discord_escape(text: str | None) -> str:
    """Discord markdown that links or mentions made literal: ``\\``, ``[``, ``]`` and ``<``
    backslash-escaped (masked links ``[x](y)``, ``<@id>``/``<#id>``/``<t:..>`` tags), and a
    zero-width space after ``@`` in ``@everyone``/``@here``."""
    escaped = _DISCORD_SPECIAL.sub(r"\\\1", text or "")
    return _DISCORD_PING.sub(lambda m: f"@{ZWSP}{m.group(1)}", escaped)


def teams_escape(text: str | None) -> str:
    """Teams Adaptive Card text made literal where it matters: every ``]`` is followed by a
    zero-width space (breaks ``[x](y)`` inline links, ``[x][y]`` references and ``[y]: url``
    definitions) and so is every ``<`` (``<at>`` mention tags, ``<https://..>`` autolinks
    become plain text)."""
    return (text or "").replace("]", f"]{ZWSP}").replace("<", f"<{ZWSP}")


# -- plain targets ----------------------------------------------------------------------


def one_line(text: str | None) -> str:
    """``text`` on one line: control characters, CR/LF and Unicode line/paragraph
    separators become spaces, runs of whitespace one space (e-mail Subject, ntfy title,
    SMS, summary lines)."""
    cleaned = "".join(
        " " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in (text or "")
    )
    return " ".join(cleaned.split())


def strip_control(text: str | None) -> str:
    """``text`` without control characters, keeping line breaks (``\\n``) and tabs."""
    return "".join(
        c
        for c in (text or "").replace("\r\n", "\n").replace("\r", "\n")
        if c in "\n\t" or unicodedata.category(c) != "Cc"
    )


# -- cutting escaped text ---------------------------------------------------------------


def fit(text: str, limit: int, escape: Callable[[str], str], ellipsis: str = ELLIPSIS) -> str:
    """``escape(text)`` when it fits ``limit``; else ``escape`` of the longest prefix of
    ``text`` that fits with ``ellipsis`` appended. The cut happens *before* escaping, so no
    escape sequence is ever split."""
    if limit <= 0:
        return ""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    if limit <= len(ellipsis):
        ellipsis = ""
    room = limit - len(ellipsis)
    low, high = 0, min(len(text), room)  # escaping never shortens: room is an upper bound
    while low < high:
        mid = (low + high + 1) // 2
        if len(escape(text[:mid].rstrip())) <= room:
            low = mid
        else:
            high = mid - 1
    return escape(text[:low].rstrip()) + ellipsis
