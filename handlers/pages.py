"""The "View incident" page linked from every Slack message: a read-only HTML summary.

It is meant to sit behind the organisation's SSO proxy like any internal tool. The
reader is anonymous to IMAS, so the access policy shows public incidents only.
"""

from __future__ import annotations

import html

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from bot.domain.actor import Actor
from bot.domain.enums import AccessRole
from bot.domain.errors import ImasError
from bot.flows import incidents
from bot.runtime import Runtime

# Nobody signs in to this page (yet): it sees what a viewer who is involved in nothing
# sees, so a private incident answers 404 like an unknown one (the access policy decides).
ANONYMOUS = Actor(label="anonymous", source="web", role=AccessRole.VIEWER, ref="anonymous")


def render(data: dict[str, object]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(str(t['at'])[:19].replace('T', ' '))}</td><td>{e(str(t['type']))}</td>"
        f"<td>{e(str(t['message']))}</td><td>{e(str(t['actor'] or ''))}</td></tr>"
        for t in data["timeline"]  # type: ignore[attr-defined]
    )
    links = []
    for label, key in (("LID document", "lid_url"), ("War room", "war_room_url")):
        if data.get(key):
            links.append(f'<a href="{e(str(data[key]))}">{label}</a>')
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{e(str(data["short_id"]))}</title>
<style>body{{font-family:sans-serif;max-width:60rem;margin:2rem auto}}td{{padding:.2rem .6rem;vertical-align:top}}</style>
</head><body><h1>{e(str(data["short_id"]))} — {e(str(data["title"]))}</h1>
<p><b>{e(str(data["severity"]))}</b> · <b>{e(str(data["status"]))}</b> · service {e(str(data["service"]))}
· team {e(str(data["team"] or "—"))} · lead {e(str(data["lead"] or "—"))}</p>
<p>{e(str(data["description"] or ""))}</p><p>{" · ".join(links)}</p>
<h2>Timeline</h2><table>{rows}</table></body></html>"""


def install(app: FastAPI, rt: Runtime) -> None:
    @app.get("/incidents/{ref}", response_class=HTMLResponse, include_in_schema=False)
    def incident_page(ref: str) -> HTMLResponse:
        try:
            data = incidents.show(rt, actor=ANONYMOUS, ref=ref, detail=True)
        except ImasError:
            return HTMLResponse("<h1>No such incident</h1>", status_code=404)
        return HTMLResponse(render(data))
