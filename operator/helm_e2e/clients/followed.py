"""Named objects in groups (a run's pods, a namespace's suites or test accounts), kept from watch events once
one LIST of the group primed them: after that a read of the group asks the API for nothing.

A group is followed from its priming LIST on. Events of groups not followed are dropped (the LIST will
carry what they said). Events that race the LIST are merged with it version by version, deletions included
(a deletion seen while the LIST was in flight is remembered by version until the LIST is merged), so the
group is never older than what its events already said. A group nothing confirmed for `max_age` seconds
(no event, no LIST) is listed again: a watch that died, or that was restarted from a fresh listing (kopf
reports no deletion for an object gone in between), cannot keep a group stale for longer.

resourceVersions are compared as integers (etcd revisions); an object or LIST whose version is not one is
never kept: that server is asked on every read, as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Protocol

from helm_e2e.clients.apierror import Body


def version(body: Mapping[str, Any]) -> int | None:
    value = (body.get("metadata") or {}).get("resourceVersion")
    return int(value) if isinstance(value, str) and value.isdigit() else None


def without_managed_fields(body: Mapping[str, Any]) -> Body:
    meta = {k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields"}
    return {**body, "metadata": meta}


class Primable(Protocol):
    """What `Kube` needs to read a group through a cache: served, or listed (and the LIST kept)."""

    def get(self, key: Any) -> list[Body] | None: ...
    def start_priming(self, key: Any) -> bool: ...
    def primed(self, key: Any, listed: list[Mapping[str, Any]], list_version: str) -> None: ...
    def abandon_priming(self, key: Any) -> None: ...


class Followed:
    def __init__(
        self,
        *,
        max_age: float,
        clock: Callable[[], float] = time.monotonic,
        slim: Callable[[Mapping[str, Any]], Body] = without_managed_fields,
    ) -> None:
        """`slim`: what is kept of a body (what its readers use: thousands of groups stay a few MiB)."""
        self.max_age, self.clock, self.slim = max_age, clock, slim
        self._groups: dict[Hashable, dict[str, tuple[int, Body]]] = {}  # followed: primed or priming
        self._listing: dict[Hashable, int] = {}  # priming LISTs in flight (several readers may miss at once)
        self._deleted: dict[Hashable, dict[str, int]] = {}  # seen deleted while a LIST was in flight
        self._confirmed: dict[Hashable, float] = {}  # primed groups: their last event or LIST

    def follows(self, key: Hashable) -> bool:
        return key in self._groups

    def get(self, key: Hashable) -> list[Body] | None:
        """The group's objects, or None: not primed yet, or not confirmed for too long (list it)."""
        confirmed = self._confirmed.get(key)
        if key not in self._groups or confirmed is None or self.clock() - confirmed > self.max_age:
            return None
        return [body for _, body in self._groups[key].values()]

    def start_priming(self, key: Hashable) -> bool:
        """Before a LIST that primes the group (again, when it went stale)."""
        self._groups.setdefault(key, {})
        self._listing[key] = self._listing.get(key, 0) + 1
        self._deleted.setdefault(key, {})
        return True

    def primed(self, key: Hashable, listed: list[Mapping[str, Any]], list_version: str) -> None:
        """Merge a priming LIST (at `list_version`) with what the events said while it was in flight."""
        group, deleted = self._groups.get(key), self._deleted.get(key, {})
        self._done_listing(key)
        if group is None:
            return  # given up meanwhile
        if not list_version.isdigit() or any(version(b) is None for b in listed):
            self.unfollow(key)
            return
        for body in listed:
            name, rv = body["metadata"]["name"], version(body) or 0
            if rv > max(deleted.get(name, 0), group.get(name, (0, None))[0]):
                group[name] = (rv, self.slim(body))
        names = {b["metadata"]["name"] for b in listed}
        for name in [n for n, (rv, _) in group.items() if n not in names and rv <= int(list_version)]:
            del group[name]  # gone before the LIST was answered
        self._confirmed[key] = self.clock()

    def abandon_priming(self, key: Hashable) -> None:
        """A priming LIST failed: a group never primed is not followed until the next one."""
        self._done_listing(key)
        if key not in self._confirmed and key not in self._listing:
            self.unfollow(key)

    def _done_listing(self, key: Hashable) -> None:
        left = self._listing.pop(key, 0) - 1
        if left > 0:
            self._listing[key] = left
        else:
            self._deleted.pop(key, None)  # no LIST in flight can bring a deleted object back

    def kept(self, key: Hashable, body: Mapping[str, Any]) -> Body | None:
        """What the group keeps of the object `body` names, if it is followed and kept."""
        entry = self._groups.get(key, {}).get(str((body.get("metadata") or {}).get("name", "")))
        return entry[1] if entry is not None else None

    def saw(self, key: Hashable, body: Mapping[str, Any], *, deleted: bool = False) -> bool:
        """An object of the group from an event or a write's response; only followed groups keep it.
        False: nothing new for a followed group (an older event, or one at the version already kept: a
        create's own response coming back), so its readers need not look again."""
        group = self._groups.get(key)
        if group is None:
            return True
        name, rv = body["metadata"]["name"], version(body)
        if rv is None:
            self.unfollow(key)
            return True
        kept = group.get(name, (0, None))[0]
        if rv < kept:
            return False  # an older event still in flight
        if deleted:
            group.pop(name, None)
            if key in self._deleted:
                self._deleted[key][name] = max(rv, self._deleted[key].get(name, 0))
        else:
            group[name] = (rv, self.slim(body))
        if key in self._confirmed:
            self._confirmed[key] = self.clock()
        return deleted or rv > kept

    def unfollow(self, key: Hashable) -> None:
        self._groups.pop(key, None)
        self._confirmed.pop(key, None)  # a LIST still in flight merges into nothing (its group is gone)
