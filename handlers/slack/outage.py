"""What a Slack user sees when the database is unreachable (issue 11).

Every listener error reaches :func:`on_listener_error` (Bolt's error handler). When the
cause is the database (``storage.db.is_unavailable``), Slack gets an answer it shows,
inside its 3 seconds: an ephemeral for a slash command, errors on the form for a modal
submission, 503 for events (Slack retries them), a plain 200 for buttons. ``/incident``
opens the declare modal after its ack: when the database read behind it fails, a modal
saying so is opened instead. Other errors keep Bolt's behaviour (500, logged). Nothing is recorded, and the
next request works as soon as the database is back: no restart needed.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import BoltResponse

from storage.db import is_unavailable

log = logging.getLogger(__name__)

DB_DOWN_TEXT = (
    ":warning: IMAS cannot reach its database; your request was not recorded. "
    "Retry in a minute, or use `imas incident declare` from a shell."
)
DB_DOWN_DECLARE = (
    "IMAS cannot reach its database; your incident was not recorded. Retry, or use "
    "`imas incident declare` from a shell."
)


def _json(payload: dict[str, Any]) -> BoltResponse:
    return BoltResponse(
        status=200, body=json.dumps(payload), headers={"content-type": "application/json"}
    )


def modal_error(view: dict[str, Any]) -> BoltResponse:
    """``response_action: errors`` on the first input block of the submitted modal."""
    blocks = [b for b in view.get("blocks") or [] if b.get("type") == "input"]
    block_id = str(blocks[0].get("block_id")) if blocks else "title"
    return _json({"response_action": "errors", "errors": {block_id: DB_DOWN_DECLARE}})


def unavailable_modal() -> dict[str, Any]:
    """A modal saying the database is unreachable (opened instead of the declare form)."""
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "IMAS"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f":warning: {DB_DOWN_DECLARE}"}}
        ],
    }


def on_listener_error(error: Exception, body: dict[str, Any]) -> BoltResponse | None:
    """Bolt's error handler: a clear answer when the database is unavailable."""
    if not is_unavailable(error):
        log.error("Slack listener failed", exc_info=error)
        return None
    log.warning("database unavailable while answering Slack: %s", type(error).__name__)
    kind = body.get("type")
    if kind == "view_submission":
        return modal_error(body.get("view") or {})
    if body.get("command"):
        return _json({"response_type": "ephemeral", "text": DB_DOWN_TEXT})
    # Events: 503 so that Slack retries them later. Buttons and shortcuts: Slack shows no
    # answer body; the click is acknowledged and can be repeated.
    if body.get("event"):
        return BoltResponse(status=503, body="", headers={"retry-after": "30"})
    return BoltResponse(status=200, body="")
