"""Fixtures of the REST API and webhook tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api_helpers import Api, api_fixture


@pytest.fixture
def api(make_settings: Any) -> Iterator[Api]:
    """The application in-process (no Slack, no workers), seeded, one token per role."""
    yield from api_fixture(make_settings)
