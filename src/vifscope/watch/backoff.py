"""Exponential back-off for reconnecting to a lost source. Pure (the caller sleeps)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Backoff:
    """Delays initial, 2×initial, 4×initial ... capped at ``maximum``; ``reset()`` on success."""

    initial: float = 1.0
    maximum: float = 30.0
    _next: float = 0.0

    def next_delay(self) -> float:
        delay = self._next or self.initial
        self._next = min(delay * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = 0.0
