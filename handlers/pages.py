"""The "View incident" page linked from every Slack message: a read-only HTML summary.

Authentication: until the dashboard's sessions exist, the page answers only to a valid
API token in the ``Authorization`` header (``Token <t>`` / ``Bearer <t>``, as the REST
API), and shows what that token may see (the access policy decides: a private incident
is a 404 like an unknown one). Without a token: 401. The styles are a served stylesheet
(``/static/imas.css``) so the Content-Security-Policy allows no inline code at all.
"""

from __future__ import annotations

import html

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from bot.domain.errors import ImasError
from bot.flows import incidents
from bot.runtime import Runtime
from handlers.api.auth import authenticate_token, credentials

STYLESHEET = (
    "body{font-family:sans-serif;max-width:60rem;margin:2rem auto}"
    "td{padding:.2rem .6rem;vertical-align:top}\n"
)
STYLESHEET_PATH = "/static/imas.css"


def render(data: dict[str, object]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(str(t['at'])[:19].replace('T', ' '))}</td><td>{e(str(t['type']))}</td>"
        f"<td>{e(str(t['message']))}</td><td>{e(str(t['actor'] or ''))}</td></tr>"
        for t in data["timeline"]  # type: ignore[attr-defined]
    )
    links = []
    for label, key in (("LID document", "lid_url"), ("War room", "war_room_url")):
        url = str(data.get(key) or "")
        if url.startswith(("https://", "http://")):  # never javascript: or data: links
            links.append(f'<a href="{e(url)}" rel="noopener noreferrer">{label}</a>')
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{e(str(data["short_id"]))}</title>
<link rel="stylesheet" href="{STYLESHEET_PATH}">
</head><body><h1>{e(str(data["short_id"]))} — {e(str(data["title"]))}</h1>
<p><b>{e(str(data["severity"]))}</b> · <b>{e(str(data["status"]))}</b> · service {e(str(data["service"]))}
· team {e(str(data["team"] or "—"))} · lead {e(str(data["lead"] or "—"))}</p>
<p>{e(str(data["description"] or ""))}</p><p>{" · ".join(links)}</p>
<h2>Timeline</h2><table>{rows}</table></body></html>"""


def _message(title: str, status: int, **headers: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><title>{title}</title><h1>{title}</h1>",
        status_code=status,
        headers=headers,
    )


def install(app: FastAPI, rt: Runtime) -> None:
    @app.get(STYLESHEET_PATH, include_in_schema=False)
    def stylesheet() -> Response:
        return Response(
            STYLESHEET,
            media_type="text/css",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    @app.get("/incidents/{ref}", response_class=HTMLResponse, include_in_schema=False)
    def incident_page(ref: str, request: Request) -> HTMLResponse:
        try:
            principal = authenticate_token(rt, credentials(request.headers.get("authorization")))
        except ImasError:  # AuthenticationError, or a token row that no longer resolves
            return _message("Authentication required", 401, **{"WWW-Authenticate": "Token"})
        try:
            data = incidents.show(rt, actor=principal.actor(via="web"), ref=ref, detail=True)
        except ImasError:
            return _message("No such incident", 404)
        return HTMLResponse(render(data), headers={"Cache-Control": "no-store"})
