"""A tiny stopwatch that fills a ``timings_s`` dict."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Timings(dict[str, float]):
    """Seconds per named step; a step measured twice accumulates."""

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self[name] = round(self.get(name, 0.0) + time.perf_counter() - start, 6)

    def total(self) -> float:
        return round(sum(v for k, v in self.items() if k != "total"), 6)
