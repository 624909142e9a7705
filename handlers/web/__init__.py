"""The web dashboard served by ``imas serve`` under ``/dashboard/`` (``/`` redirects there).

Server-rendered Jinja2 templates and static CSS/JS shipped inside the package (no CDN, no
build step: works air-gapped), a strict Content-Security-Policy without inline script,
sign-in with local users (``handlers.web.auth``), and forms that call the same flows as
Slack and REST (``handlers.web.views``).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware
from starlette.staticfiles import StaticFiles

from bot.runtime import Runtime
from handlers.web.auth import SESSION_COOKIE, SESSION_MAX_AGE, session_secret
from handlers.web.views import PREFIX
from handlers.web.views import install as install_views

STATIC_DIR = Path(__file__).parent / "static"


def install(app: FastAPI, rt: Runtime) -> None:
    """Mount the dashboard on ``app``: its routes, its static files, its session cookie."""
    install_views(app, rt)
    app.mount(PREFIX + "/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(rt.settings),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE,
        path=PREFIX,
        same_site="lax",
        https_only=rt.settings.base_url.lower().startswith("https://"),
    )
