"""Is a release still installed? Asked a moment after its deployed revision left the watch, not at once.

The watch selects a release's deployed revision (names.HELM_SECRET_SELECTOR). When that revision leaves
the selection, the apiserver sends DELETED with the object as it was *before*, still labelled `deployed`:
an upgrade's superseding and a hand deletion look alike. Asking at once (a LIST of the release's Secrets)
cost every upgrade a request it did not need, because an upgrade's next step is its new revision arriving
`deployed` a few milliseconds later. So the question waits `CHECK_DELAY_SECONDS`; a deployed revision of
the same release arriving meanwhile answers it without a request. At most one check waits per release.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from helm_e2e import errors

CHECK_DELAY_SECONDS = 5.0  # Helm relabels the new revision `deployed` right after superseding the old one
log = structlog.get_logger(__name__)
ReleaseKey = tuple[str, str]  # (namespace, release)


class ReleaseChecks:
    def __init__(
        self, check: Callable[[str, str], Awaitable[None]], *, delay_seconds: float = CHECK_DELAY_SECONDS
    ) -> None:
        self._check = check
        self.delay_seconds = delay_seconds
        self._waiting: dict[ReleaseKey, asyncio.Task[None]] = {}

    def later(self, namespace: str, release: str) -> None:
        """Check the release after the delay, unless a deployed revision of it arrives first."""
        key = (namespace, release)
        if key not in self._waiting:
            self._waiting[key] = asyncio.create_task(self._after_delay(key), name=f"release-check {key}")

    def answered(self, namespace: str, release: str) -> None:
        """A deployed revision of the release (or its uninstall) arrived: a waiting check is moot."""
        task = self._waiting.pop((namespace, release), None)
        if task is not None:
            task.cancel()

    async def _after_delay(self, key: ReleaseKey) -> None:
        try:
            await asyncio.sleep(self.delay_seconds)
        finally:
            if self._waiting.get(key) is asyncio.current_task():
                del self._waiting[key]
        try:
            await self._check(*key)
        except Exception as e:  # said, not lost in a task nobody awaits; the kind of error, never its text
            kind = e.reason if isinstance(e, errors.KubeError) else type(e).__name__
            log.warning("release.check.failed", namespace=key[0], release=key[1], error=kind)

    async def settle(self) -> None:
        """Wait until every waiting check has run (tests; a quiet shutdown)."""
        while self._waiting:
            await asyncio.gather(*self._waiting.values(), return_exceptions=True)

    def stop(self) -> None:
        for task in self._waiting.values():
            task.cancel()
        self._waiting.clear()
