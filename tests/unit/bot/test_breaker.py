"""Per-provider circuit breaker (R10)."""

from __future__ import annotations

import pytest

from bot.breaker import CircuitBreakers
from bot.domain.errors import Defer


def test_opens_after_threshold_then_one_probe_then_closes():
    now = [0.0]
    breakers = CircuitBreakers(threshold=5, cooldown=60, clock=lambda: now[0])
    for _ in range(4):
        breakers.before("pd")
        breakers.failure("pd")
    breakers.before("pd")  # still closed after 4 failures
    breakers.failure("pd")
    with pytest.raises(Defer) as deferred:
        breakers.before("pd")
    assert 59 <= deferred.value.seconds <= 60
    breakers.before("discord")  # other providers unaffected
    now[0] = 61
    breakers.before("pd")  # the probe
    with pytest.raises(Defer):
        breakers.before("pd")  # only one probe at a time
    breakers.success("pd")
    breakers.before("pd")
    assert not breakers.is_open("pd")


def test_failed_probe_reopens_for_a_cooldown():
    now = [0.0]
    breakers = CircuitBreakers(threshold=2, cooldown=10, clock=lambda: now[0])
    breakers.failure("x")
    breakers.failure("x")
    now[0] = 11
    breakers.before("x")
    breakers.failure("x")
    with pytest.raises(Defer):
        breakers.before("x")
    now[0] = 22
    breakers.before("x")
