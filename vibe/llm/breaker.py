"""A circuit breaker: after enough failed calls in a row, stop calling for a while.

While Gemini is down or out of quota, every call would spend its whole budget on
retries before falling back; an open breaker falls back at once. After `reset_s` one
trial call is let through (half-open): success closes the breaker, failure opens it
again. Per process, on purpose: each replica learns quickly enough on its own, and the
shared rate limiter already coordinates replicas' request volume.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

    def __init__(self, failure_threshold: int, reset_s: float, clock: Callable[[], float] = time.monotonic):
        self.failure_threshold = failure_threshold
        self.reset_s = reset_s
        self.clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self._state = self.CLOSED
        self._trial_in_flight = False

    @property
    def state(self) -> str:
        return self._state

    def allow(self, trial: bool = True) -> bool:
        """May a call go out now? Every allowed call must end in `success`, `failure`
        or `release`. With `trial=False` the call never is the half-open trial: only a
        closed breaker lets it through (for a call that has a fallback and runs beside
        the one that should be the trial)."""
        if self._state == self.OPEN and self.clock() - self._opened_at >= self.reset_s:
            self._state = self.HALF_OPEN
        if self._state == self.CLOSED:
            return True
        if trial and self._state == self.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def success(self) -> None:
        self._state, self._failures, self._trial_in_flight = self.CLOSED, 0, False

    def failure(self) -> None:
        self._failures += 1
        if self._state == self.HALF_OPEN or self._failures >= self.failure_threshold:
            self._state, self._opened_at = self.OPEN, self.clock()
        self._trial_in_flight = False

    def release(self) -> None:
        """The call ended without telling anything about the upstream's health
        (cancelled, or failed on our side)."""
        self._trial_in_flight = False
