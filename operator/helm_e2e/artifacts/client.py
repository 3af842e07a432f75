"""`helm-e2e artifacts` and `helm-e2e junit`'s reports: fetch a run's artifacts with the user's own
kubeconfig rights, never a password of ours.

1. A fresh random nonce; its digest and the time go on the E2ERun as an annotation (needs `patch e2eruns`
   in the run's namespace: the user's right, checked by the apiserver).
2. The operator's server is reached through the apiserver's service proxy (needs `get services/proxy` on the
   operator's Service); the nonce travels in a header, and the operator checks it against the annotation.
3. The annotation is removed again.
"""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from helm_e2e.clients.kube import Kube
from helm_e2e.core.artifacts import rules
from helm_e2e.core.model import names

PORT_NAME = "artifacts"
MAX_LISTING_BYTES = 8 * 2**20


class FetchError(Exception):
    """What went wrong, in one line for the user."""


@dataclass(frozen=True)
class Operator:
    """Where the operator's Service is: the chart's defaults are namespace and name `helm-e2e`."""

    namespace: str = "helm-e2e"
    service: str = "helm-e2e"

    def path(self, rest: str) -> str:
        return f"/api/v1/namespaces/{self.namespace}/services/{self.service}:{PORT_NAME}/proxy{rest}"


# the chart's labels of the artifacts Service (templates/rules.yaml): found whatever the release's name
SERVICE_SELECTOR = "app.kubernetes.io/name=helm-e2e,app.kubernetes.io/component=artifacts"


def choose_operator(found: list[tuple[str, str]], *, namespace: str | None, service: str | None) -> Operator:
    """The operator's Service among those the selector `found` ((namespace, name)), narrowed by what the
    user gave; FetchError naming the candidates when it is not exactly one."""
    if namespace and service:
        return Operator(namespace, service)
    matching = sorted((ns, name) for ns, name in found if namespace in (None, ns) and service in (None, name))
    if len(matching) == 1:
        return Operator(*matching[0])
    if not matching:
        raise FetchError(
            f"no helm-e2e artifacts Service found (label selector {SERVICE_SELECTOR}); "
            "pass --operator-namespace and --operator-service"
        )
    listed = ", ".join(f"{ns}/{name}" for ns, name in matching)
    raise FetchError(f"several helm-e2e operators ({listed}): pick one with --operator-namespace")


async def find_operator(kube: Kube, *, namespace: str | None, service: str | None) -> Operator:
    """Where the operator's artifacts Service is, found by its labels (cluster-wide if the user may list
    services there, else in --operator-namespace or the chart's default namespace `helm-e2e`)."""
    if namespace and service:
        return Operator(namespace, service)

    def listed() -> list[tuple[str, str]]:
        try:
            if namespace is None:
                items = kube.core.list_service_for_all_namespaces(label_selector=SERVICE_SELECTOR).items
            else:
                items = kube.core.list_namespaced_service(namespace, label_selector=SERVICE_SELECTOR).items
        except Exception:  # no right to list cluster-wide: the chart's default namespace
            if namespace is not None:
                raise FetchError(f"services in namespace {namespace} could not be listed") from None
            return [(Operator.namespace, service or Operator.service)]
        return [(str(i.metadata.namespace), str(i.metadata.name)) for i in items if i.metadata]

    return choose_operator(await asyncio.to_thread(listed), namespace=namespace, service=service)


class Fetcher:
    def __init__(self, kube: Kube, operator: Operator, namespace: str, run: str) -> None:
        self.kube, self.operator, self.namespace, self.run = kube, operator, namespace, run
        self.nonce = secrets.token_urlsafe(32)

    async def _annotate(self, value: str | None) -> None:
        body = {"metadata": {"annotations": {names.ARTIFACTS_TICKET_ANNOTATION: value}}}
        patch = self.kube.custom.patch_namespaced_custom_object
        await asyncio.to_thread(patch, names.GROUP, names.VERSION, self.namespace, names.RUNS, self.run, body)

    @contextmanager
    def _get(self, rest: str) -> Iterator[Any]:
        """One GET through the service proxy, streamed (the urllib3 response)."""
        api = self.kube.custom.api_client
        params = api.param_serialize(
            "GET",
            self.operator.path(rest),
            header_params={names.TICKET_HEADER: self.nonce, "Accept": "*/*"},
            auth_settings=["BearerToken"],
        )
        try:
            response = api.call_api(*params, _request_timeout=120).response
        except Exception as e:  # connection refused, TLS, timeout: never a value of ours in it
            raise FetchError(f"the apiserver could not be reached ({type(e).__name__})") from None
        try:
            if response.status != 200:
                body = response.read(300).decode(errors="replace")
                raise FetchError(f"the operator's artifacts server answered {response.status}: {body}")
            yield response
        finally:
            response.release_conn()

    async def listing(self) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            with self._get(f"/v1/runs/{self.namespace}/{self.run}") as response:
                data = response.read(MAX_LISTING_BYTES + 1)
            if len(data) > MAX_LISTING_BYTES:
                raise FetchError("the artifact listing is too large")
            parsed = json.loads(data)
            return parsed if isinstance(parsed, dict) else {}

        return await asyncio.to_thread(read)

    async def bundle(self, test: str) -> bytes:
        def read() -> bytes:
            with self._get(f"/v1/runs/{self.namespace}/{self.run}/tests/{test}") as response:
                return bytes(response.read())

        return await asyncio.to_thread(read)

    async def __aenter__(self) -> Fetcher:
        await self._annotate(rules.ticket_annotation(self.nonce, datetime.now(UTC)))
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._annotate(None)


def extract(bundle: bytes, into: Path) -> list[str]:
    """The bundle's regular files under `into` (tarfile's `data` filter: no links, no escapes)."""
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:*") as tar:
        members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
        tar.extractall(into, members=members, filter="data")
    return sorted(m.name for m in members if m.isfile())


def read_member(bundle: bytes, name: str) -> bytes | None:
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:*") as tar:
        for member in tar:
            if member.isfile() and rules.normalize_member_name(member.name) == name:
                handle = tar.extractfile(member)
                return handle.read() if handle else None
    return None


async def fetch_artifacts(
    kube: Kube, operator: Operator, namespace: str, run: str, *, test: str | None, into: Path
) -> int:
    """Write the run's (or one test's) artifacts under into/<test>/; print what was fetched."""
    async with Fetcher(kube, operator, namespace, run) as fetcher:
        tests = (await fetcher.listing()).get("tests", {})
        wanted = {t: v for t, v in tests.items() if test is None or t == test}
        if not wanted:
            print(f"{namespace}/{run}: no artifacts" + (f" for test {test}" if test else ""))
            return 0
        for name, entry in sorted(wanted.items()):
            if entry.get("refused"):
                print(f"{name}: refused: {entry['refused']}")
            if not entry.get("files"):
                continue
            files = extract(await fetcher.bundle(name), into / name)
            print(f"{name}: {len(files)} files in {into / name}")
    return 0


async def fetch_junit_reports(kube: Kube, operator: Operator, namespace: str, run: str) -> dict[str, bytes]:
    """Each test's junit.xml (the pytest runner writes one), by test name."""
    reports: dict[str, bytes] = {}
    async with Fetcher(kube, operator, namespace, run) as fetcher:
        for test, entry in (await fetcher.listing()).get("tests", {}).items():
            if any(f.get("name") == "junit.xml" for f in entry.get("files", [])):
                data = read_member(await fetcher.bundle(test), "junit.xml")
                if data is not None:
                    reports[test] = data
    return reports
