"""A set that forgets its oldest members past a size: what the operator remembers per object (a warned
Secret version, a re-run token seen done) must never grow with every object a tenant can write."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class BoundedSet(Generic[K]):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._members: dict[K, None] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._members

    def __len__(self) -> int:
        return len(self._members)

    def add(self, key: K) -> None:
        self._members.pop(key, None)  # re-added: the newest again
        self._members[key] = None
        while len(self._members) > self.limit:
            self._members.pop(next(iter(self._members)))

    def discard(self, key: K) -> None:
        self._members.pop(key, None)
