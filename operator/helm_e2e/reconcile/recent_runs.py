"""The release's runs as a run's final pass listed them (its regression verdict), kept for that run's report:
the history strip is drawn from them instead of a second LIST a moment later. The strip is cosmetic and
takes this run as given over its listed copy, so a list a few seconds old draws the same strip.

Kept per run, taken once (a retried send lists again), bounded in number and age; a process that restarted
in between has none: its report lists, as before.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from helm_e2e.core.model.run import Run

Key = tuple[str, str]  # (namespace, run name)
MAX_ENTRIES = 1024  # runs ending at once; beyond, the oldest entry goes (its report lists)
MAX_AGE_SECONDS = 300.0  # a report that waited longer (a rollback, an outbox retry) lists afresh


class RecentRuns:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._kept: OrderedDict[Key, tuple[float, list[Run]]] = OrderedDict()

    def keep(self, key: Key, runs: Sequence[Run]) -> None:
        now = self.clock()
        self._kept.pop(key, None)
        self._kept[key] = (now, list(runs))
        # the oldest first (kept in order): too many, or too old for any report to take (a report not sent)
        while len(self._kept) > MAX_ENTRIES or now - next(iter(self._kept.values()))[0] > MAX_AGE_SECONDS:
            self._kept.popitem(last=False)

    def __len__(self) -> int:
        return len(self._kept)

    def take(self, key: Key) -> list[Run] | None:
        """The runs kept for this run's report, once; None: list them."""
        entry = self._kept.pop(key, None)
        if entry is None or self.clock() - entry[0] > MAX_AGE_SECONDS:
            return None
        return entry[1]
