"""Page-number pagination, DRF style: ``?page=N&page_size=M`` in, ``{"count", "next",
"previous", "results"}`` out, with absolute ``next``/``previous`` URLs built from
``IMAS_BASE_URL`` (so they are right behind a reverse proxy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Query, Request

from bot.runtime import Runtime

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class PageParams:
    page: int
    size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


def page_params(
    page: int = Query(1, ge=1, le=1_000_000, description="Page number, from 1."),
    page_size: int = Query(
        DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Results per page."
    ),
) -> PageParams:
    """Dependency: the requested page (400 when out of range)."""
    return PageParams(page=page, size=page_size)


def _url(rt: Runtime, request: Request, page: int) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
    if page > 1:
        params.append(("page", str(page)))
    query = urlencode(params)
    return f"{rt.settings.base_url}{request.url.path}" + (f"?{query}" if query else "")


def paginated(
    rt: Runtime, request: Request, params: PageParams, count: int, results: list[Any]
) -> dict[str, Any]:
    """The page envelope for ``results`` (already the requested slice) out of ``count``."""
    has_next = params.offset + len(results) < count
    has_previous = params.page > 1
    return {
        "count": count,
        "next": _url(rt, request, params.page + 1) if has_next else None,
        "previous": _url(rt, request, params.page - 1) if has_previous else None,
        "results": results,
    }
