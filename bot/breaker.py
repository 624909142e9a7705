"""Per-provider circuit breakers, so one dead target never slows the others.

After ``threshold`` consecutive retryable failures (timeouts, 5xx, 429) a provider's
breaker opens: its deliveries wait in the outbox (``Defer``, not counted as attempts)
without calling the target, freeing the workers for the other providers. After
``cooldown`` seconds one delivery goes through as a probe (half-open); its success closes
the breaker, its failure opens it for another cooldown. A permanent error (4xx) proves the
target answers, so it counts as a success here (the delivery itself still ends dead).

State is per process, in memory: a restart starts closed, which at worst costs one probe
per provider.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.domain.errors import Defer


@dataclass
class _State:
    failures: int = 0
    open_until: float = 0.0
    probing: bool = False


class CircuitBreakers:
    def __init__(
        self,
        *,
        threshold: int = 5,
        cooldown: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()

    def before(self, name: str) -> None:
        """Raise Defer while ``name``'s breaker is open (one probe passes after cooldown)."""
        with self._lock:
            state = self._states.get(name)
            if state is None or state.failures < self.threshold:
                return
            now = self.clock()
            if now < state.open_until:
                raise Defer(f"circuit open for provider {name}", state.open_until - now)
            if state.probing:
                raise Defer(f"circuit half-open for provider {name}: a probe is in flight", 1.0)
            state.probing = True

    def success(self, name: str) -> None:
        with self._lock:
            self._states.pop(name, None)

    def failure(self, name: str) -> None:
        with self._lock:
            state = self._states.setdefault(name, _State())
            state.failures += 1
            state.probing = False
            if state.failures >= self.threshold:
                state.open_until = self.clock() + self.cooldown

    def is_open(self, name: str) -> bool:
        with self._lock:
            state = self._states.get(name)
            return bool(state and state.failures >= self.threshold)
