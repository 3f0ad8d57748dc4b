"""Failed-login throttling: at most N failures per username and M per client address in a sliding window.

Per username, so a password cannot be guessed from many addresses; per address, so one client cannot
spray many usernames. While either is over its limit, logins are refused without checking the password
(the right password then gets no answer either, or the limit would be an oracle). Kept in memory: a
restart forgives, which an attacker cannot provoke from outside.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

#: Keys remembered at most; beyond it the stalest are forgotten, so a flood of addresses cannot exhaust memory.
MAX_KEYS = 100_000


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginLimits:
    """How many failures, per what, in how long."""

    window_s: float
    per_user: int
    per_ip: int


class LoginLimiter:
    """Sliding-window failure counts per ``user:<name>`` and ``ip:<address>``."""

    def __init__(self, limits: LoginLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        horizon = self._clock() - self.limits.window_s
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def retry_after(self, username: str, ip: str) -> float | None:
        """Seconds until a login may be tried again, or None if it may be tried now."""
        waits = []
        for key, limit in ((f"user:{username}", self.limits.per_user), (f"ip:{ip}", self.limits.per_ip)):
            failures = self._recent(key)
            if len(failures) >= limit:
                waits.append(failures[len(failures) - limit] + self.limits.window_s - self._clock())
        return max(max(waits), 1.0) if waits else None

    def failed(self, username: str, ip: str) -> None:
        """Count one failed login."""
        now = self._clock()
        for key in (f"user:{username}", f"ip:{ip}"):
            self._failures.setdefault(key, deque()).append(now)
        if len(self._failures) > MAX_KEYS:
            self._forget_stalest()

    def succeeded(self, username: str) -> None:
        """A successful login clears the user's failures (not the address's: it may be spraying)."""
        self._failures.pop(f"user:{username}", None)

    def _forget_stalest(self) -> None:
        by_age = sorted(self._failures, key=lambda key: self._failures[key][-1])
        for key in by_age[: len(by_age) // 10 or 1]:
            del self._failures[key]
