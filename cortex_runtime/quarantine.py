"""Refuse calls to a plugin that keeps trapping, timing out or crashing workers, for a while.

Every such failure costs a worker process; a plugin failing in a loop would otherwise turn the pool
into a fork bomb of restarts and starve the healthy plugins.
"""

from __future__ import annotations

import collections
import time

from .errors import PluginQuarantined


class Quarantine:
    """Counts recent failures per plugin; past ``threshold`` within ``window`` s, blocks it."""

    def __init__(self, *, threshold: int, window: float, duration: float) -> None:
        self.threshold = threshold
        self.window = window
        self.duration = duration
        self._failures: dict[str, collections.deque[float]] = {}
        self._until: dict[str, float] = {}

    def check(self, plugin: str) -> None:
        """Raise :class:`PluginQuarantined` if ``plugin`` is in quarantine now."""
        until = self._until.get(plugin)
        if until is None:
            return
        remaining = until - time.monotonic()
        if remaining <= 0:
            del self._until[plugin]
            self._failures.pop(plugin, None)
            return
        raise PluginQuarantined(
            f"plugin {plugin!r} is quarantined for another {remaining:.1f}s after "
            f"{self.threshold} failures (traps, timeouts or crashes) within {self.window:g}s",
            retry_after=remaining, plugin=plugin,
        )

    def record_failure(self, plugin: str) -> bool:
        """Count one failure; return True if it put the plugin into quarantine."""
        if self.threshold <= 0:
            return False
        now = time.monotonic()
        recent = self._failures.setdefault(plugin, collections.deque())
        recent.append(now)
        while recent and now - recent[0] > self.window:
            recent.popleft()
        if len(recent) >= self.threshold and plugin not in self._until:
            self._until[plugin] = now + self.duration
            return True
        return False

    def release(self, plugin: str) -> None:
        """Forget ``plugin``'s failures and lift its quarantine (e.g. after a reload)."""
        self._failures.pop(plugin, None)
        self._until.pop(plugin, None)
