"""An in-memory coordination.k8s.io/v1 Lease store with the apiserver's optimistic concurrency, and one
connection to it per candidate, whose faults (refused, hanging) a test switches on and off."""

from __future__ import annotations

import copy
import json
import threading
from typing import Any

import urllib3.exceptions
from kubernetes import client
from kubernetes.client.exceptions import ApiException


def _api_error(status: int, reason: str) -> ApiException:
    return ApiException(status=status, reason=reason, body=json.dumps({"code": status, "reason": reason}))


class LeaseStore:
    def __init__(self) -> None:
        self._leases: dict[tuple[str, str], client.V1Lease] = {}
        self._version = 0
        self._mutex = threading.Lock()

    def get(self, namespace: str, name: str) -> client.V1Lease | None:
        with self._mutex:
            lease = self._leases.get((namespace, name))
            return copy.deepcopy(lease)

    def holder(self, namespace: str, name: str) -> str | None:
        lease = self.get(namespace, name)
        return lease.spec.holder_identity if lease and lease.spec else None

    def read(self, namespace: str, name: str) -> client.V1Lease:
        lease = self.get(namespace, name)
        if lease is None:
            raise _api_error(404, "NotFound")
        return lease

    def create(self, namespace: str, body: client.V1Lease) -> client.V1Lease:
        with self._mutex:
            key = (namespace, body.metadata.name)
            if key in self._leases:
                raise _api_error(409, "AlreadyExists")
            return self._store(key, body)

    def replace(self, namespace: str, name: str, body: client.V1Lease) -> client.V1Lease:
        with self._mutex:
            current = self._leases.get((namespace, name))
            if current is None:
                raise _api_error(404, "NotFound")
            if body.metadata.resource_version != current.metadata.resource_version:
                raise _api_error(409, "Conflict")
            return self._store((namespace, name), body)

    def _store(self, key: tuple[str, str], body: client.V1Lease) -> client.V1Lease:
        self._version += 1
        stored = copy.deepcopy(body)
        stored.metadata.namespace, stored.metadata.resource_version = key[0], str(self._version)
        self._leases[key] = stored
        return copy.deepcopy(stored)


class LeaseConnection:
    """What one candidate sees of the store (a CoordinationV1Api): `refused` raises urllib3's connection
    error (not an ApiException), `hanging` blocks every call until `unhang()` whatever its timeout."""

    def __init__(self, store: LeaseStore) -> None:
        self.store = store
        self.refused = False
        self._unhung = threading.Event()
        self._unhung.set()
        self.timeouts: list[float] = []

    def hang(self) -> None:
        self._unhung.clear()

    def unhang(self) -> None:
        self._unhung.set()

    def _call(self, timeout: float) -> None:
        self.timeouts.append(timeout)
        self._unhung.wait()
        if self.refused:
            raise urllib3.exceptions.MaxRetryError(None, "/apis/coordination.k8s.io", "Connection refused")  # type: ignore[arg-type]

    def read_namespaced_lease(self, name: str, namespace: str, *, _request_timeout: float) -> Any:
        self._call(_request_timeout)
        return self.store.read(namespace, name)

    def create_namespaced_lease(self, namespace: str, body: Any, *, _request_timeout: float) -> Any:
        self._call(_request_timeout)
        return self.store.create(namespace, body)

    def replace_namespaced_lease(
        self, name: str, namespace: str, body: Any, *, _request_timeout: float
    ) -> Any:
        self._call(_request_timeout)
        return self.store.replace(namespace, name, body)
