"""The operator's side of artifacts: upload tokens, receiving and storing a test's bundle, reading manifests
and files back, and deleting a run's artifacts with the run. See docs/rules.md.

Tokens are HS256 JWTs (PyJWT) signed with a key kept in the store itself: every replica and every restart
sees the same key, and test pods never hold anything but their own test's token.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import structlog
from pydantic import ValidationError

from helm_e2e import errors
from helm_e2e.artifacts import bundle as artifact_bundle
from helm_e2e.artifacts.bundle import BundleRefused, FailureParser
from helm_e2e.artifacts.store import ArtifactStore, open_store
from helm_e2e.clients import metrics
from helm_e2e.core.artifacts import rules
from helm_e2e.core.model import names
from helm_e2e.core.model.run import Run
from helm_e2e.settings import Settings

log = structlog.get_logger(__name__)

KEY_PATH = "keys/upload-signing-key"
STORE_CHECK_SECONDS = 30.0  # a readiness probe every 10 s writes to the store at most this often
MAX_NOT_COLLECTED = 10_000  # tests remembered as started without a collector (oldest forgotten first)
TOKEN_GRACE_SECONDS = 3600  # past the run's deadline: time to ship after a test that used all of it
MANIFEST_MAX_BYTES = 4 * 2**20


STORE_HINT = (
    "the operator (uid/gid 65532) must be able to write the store: for the chart's volume keep the pod's "
    "fsGroup (65532), for s3:// check the bucket, endpoint and credentials"
)


@dataclass(frozen=True)
class UploadClaims:
    """Whom a valid token lets upload: one test of one run (by uid: never a later run of the same name)."""

    namespace: str
    run: str
    uid: str
    test: str


class Artifacts:
    def __init__(
        self, store: ArtifactStore, settings: Settings, *, parse_failures: FailureParser | None = None
    ) -> None:
        self.store, self.settings, self.parse_failures = store, settings, parse_failures
        self._key: bytes | None = None
        self._key_lock = asyncio.Lock()
        self._checked: tuple[float, str] | None = None  # (monotonic time, problem or "")
        # (run uid, test) → why its evidence is not collected: the test's artifactsMessage when it ends
        self._not_collected: dict[tuple[str, str], str] = {}

    # --- is the store usable? ---
    async def store_problem(self, *, fresh: bool = False) -> str:
        """ "" when the store can be written and read back (a real write: a fresh volume owned by root is
        readable and not writable), else why not, in one line; re-checked at most every 30 s."""
        now = time.monotonic()
        if fresh or self._checked is None or now - self._checked[0] > STORE_CHECK_SECONDS:
            try:
                await self.store.probe()
                problem = ""
            except errors.StoreError as e:
                problem = f"the artifact store cannot be written: {e}"
            self._note_store(problem, now=now)
        return self._checked[1] if self._checked else ""

    def _note_store(self, problem: str, *, now: float | None = None) -> None:
        was = self._checked[1] if self._checked else ""
        self._checked = (time.monotonic() if now is None else now, problem)
        metrics.ARTIFACT_STORE_READY.set(0 if problem else 1)
        if problem and problem != was:
            log.error("rules.store_unwritable", error=problem, hint=STORE_HINT)
        elif was and not problem:
            log.info("rules.store_writable")

    def not_collected(self, run: Run, test: str, why: str) -> None:
        """Remember that `test` runs without its collector and why (bounded: never grows with the runs)."""
        if len(self._not_collected) >= MAX_NOT_COLLECTED:
            self._not_collected.pop(next(iter(self._not_collected)))
        self._not_collected[(run.uid, test)] = why

    # --- the key and the tokens ---
    async def key(self) -> bytes:
        """The signing key: created once (create-only put), then read by everyone."""
        async with self._key_lock:
            if self._key is None:
                await self.store.put_bytes_if_absent(KEY_PATH, secrets.token_bytes(32))
                key = await self.store.get_bytes(KEY_PATH, max_bytes=1024)
                if not key or len(key) < 32:
                    raise errors.StoreError(
                        "the artifact store holds no usable upload signing key", reason="NoKey"
                    )
                self._key = key
            return self._key

    async def mint(self, run: Run, test: str, *, now: datetime) -> str:
        expires = now + timedelta(seconds=run.spec.deadline_seconds + TOKEN_GRACE_SECONDS)
        claims = {
            "aud": names.TOKEN_AUDIENCE,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "ns": run.namespace,
            "run": run.name,
            "uid": run.uid,
            "test": test,
        }
        return jwt.encode(claims, await self.key(), algorithm="HS256")

    async def verify(self, token: str) -> UploadClaims | None:
        try:
            claims = jwt.decode(
                token,
                await self.key(),
                algorithms=["HS256"],
                audience=names.TOKEN_AUDIENCE,
                options={"require": ["exp", "aud", "ns", "run", "uid", "test"]},
            )
        except jwt.PyJWTError:
            return None
        values = [claims.get(k) for k in ("ns", "run", "uid", "test")]
        if not all(isinstance(v, str) and v and "/" not in v for v in values):
            return None
        return UploadClaims(*values)  # type: ignore[arg-type]

    async def upload_token(self, run: Run, test: str, *, now: datetime) -> str:
        """A collector's upload token for one test of `run` (what the collector sends is the core's:
        core.lifecycle.creation); a store whose key cannot be had is noted as the problem."""
        try:
            return await self.mint(run, test, now=now)
        except errors.StoreError as e:  # the key could not be created or read: the store is the problem
            self._note_store(f"the artifact store cannot be written: {e}")
            raise

    # --- receiving ---
    async def receive(self, claims: UploadClaims, bundle: Path, *, now: datetime) -> rules.Manifest:
        """Validate and store one test's bundle; a refusal is recorded for the test and raised."""
        s = self.settings
        try:
            report = await asyncio.to_thread(
                artifact_bundle.inspect_bundle,
                bundle,
                max_bytes=s.artifacts_max_test_bytes,
                max_files=s.artifacts_max_files,
                parse_failures=self.parse_failures,
            )
            others = await self._run_bytes(claims, besides=claims.test)
            if why := rules.check_run_quota(
                others, report.total_bytes, max_run_bytes=s.artifacts_max_run_bytes
            ):
                raise BundleRefused(why)
        except BundleRefused as e:
            await self.refuse(claims, str(e), now=now)
            raise
        digest = await asyncio.to_thread(_sha256_file, bundle)
        key = rules.bundle_key(claims.namespace, claims.run, claims.uid, claims.test, digest)
        await self.store.put_file(key, bundle)
        old = await self.manifest(claims.namespace, claims.run, claims.uid, claims.test)
        manifest = rules.Manifest(bundle=key, files=report.files, failures=report.failures, uploaded_at=now)
        await self._write_manifest(claims, manifest)  # the commit point
        if old is not None and old.bundle and old.bundle != key:
            await self.store.delete(old.bundle)
        metrics.ARTIFACT_UPLOADS.labels(result="stored").inc()
        metrics.ARTIFACT_BYTES.inc(report.total_bytes)
        return manifest

    async def refuse(self, claims: UploadClaims, why: str, *, now: datetime) -> None:
        """Record why the test's upload was refused (its status shows it); an earlier stored bundle stays
        only if this was not its replacement: a refused upload never leaves half of anything."""
        old = await self.manifest(claims.namespace, claims.run, claims.uid, claims.test)
        await self._write_manifest(claims, rules.Manifest(refused=why, uploaded_at=now))
        if old is not None and old.bundle:
            await self.store.delete(old.bundle)
        metrics.ARTIFACT_UPLOADS.labels(result="refused").inc()

    async def _write_manifest(self, claims: UploadClaims, manifest: rules.Manifest) -> None:
        key = rules.manifest_key(claims.namespace, claims.run, claims.uid, claims.test)
        await self.store.put_bytes(key, manifest.model_dump_json(by_alias=True).encode())

    async def _run_bytes(self, claims: UploadClaims, *, besides: str) -> int:
        stored = await self.run_manifests(claims.namespace, claims.run, claims.uid)
        return sum(m.total_bytes for test, m in stored.items() if test != besides)

    # --- reading back ---
    async def _read_manifest(self, key: str) -> rules.Manifest | None:
        data = await self.store.get_bytes(key, max_bytes=MANIFEST_MAX_BYTES)
        if data is None:
            return None
        try:
            return rules.Manifest.model_validate_json(data)
        except ValidationError:
            log.warning("rules.manifest_unreadable", key=key)
            return None

    async def manifest(self, namespace: str, run: str, uid: str, test: str) -> rules.Manifest | None:
        return await self._read_manifest(rules.manifest_key(namespace, run, uid, test))

    async def manifests(self, run: Run, tests: Sequence[str]) -> dict[str, rules.Manifest]:
        """The tests' manifests; a test that ran without its collector gets one that says why."""
        found = {}
        for test in tests:
            why = self._not_collected.pop((run.uid, test), "")
            manifest = None if why else await self.manifest(run.namespace, run.name, run.uid, test)
            if manifest is not None:
                found[test] = manifest
            elif why:
                found[test] = rules.Manifest(refused=why)
        return found

    async def run_manifests(self, namespace: str, run: str, uid: str) -> dict[str, rules.Manifest]:
        prefix = rules.run_prefix(namespace, run, uid)
        found = {}
        for obj in await self.store.list(prefix):
            test, _, rest = obj.key[len(prefix) :].partition("/")
            if rest == "manifest.json" and (manifest := await self._read_manifest(obj.key)) is not None:
                found[test] = manifest
        return found

    async def download_bundle(self, manifest: rules.Manifest, into: Path) -> bool:
        limit = self.settings.artifacts_max_test_bytes * 2 + 2**20  # compressed: never more than that
        return bool(manifest.bundle) and await self.store.download(manifest.bundle, into, max_bytes=limit)

    async def read_files(
        self, manifest: rules.Manifest, wanted: set[str], *, max_bytes: int
    ) -> dict[str, bytes]:
        """Named files of one test's bundle, at most `max_bytes` in all."""
        if not wanted or not manifest.bundle:
            return {}
        with tempfile.TemporaryDirectory(prefix="helm-e2e-read-") as tmp:
            path = Path(tmp) / "bundle"
            if not await self.download_bundle(manifest, path):
                return {}
            return await asyncio.to_thread(
                artifact_bundle.extract_files,
                path,
                wanted,
                max_read=rules.inflated_bound(
                    self.settings.artifacts_max_test_bytes, self.settings.artifacts_max_files
                ),
                max_bytes=max_bytes,
            )

    # --- with the run ---
    async def delete_run(self, namespace: str, run: str, uid: str) -> int:
        return await self.store.delete_prefix(rules.run_prefix(namespace, run, uid))

    async def stored_runs(self) -> set[tuple[str, str, str]]:
        """(namespace, run, uid) of every run that has anything in the store."""
        found = set()
        for obj in await self.store.list("runs"):
            parts = obj.key.split("/")
            if len(parts) >= 5 and parts[0] == "runs":
                found.add((parts[1], parts[2], parts[3]))
        return found


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def build_artifacts(settings: Settings) -> Artifacts | None:
    """The artifacts service when configured (store, URL and collector image), else None."""
    if not settings.artifacts_enabled:
        return None
    from helm_e2e.core.results.junit_reader import failures_from_junit

    return Artifacts(open_store(settings.artifacts_store), settings, parse_failures=failures_from_junit)


async def sweep_orphans(
    service: Artifacts, get_run: Callable[[str, str], Awaitable[Mapping[str, Any] | None]]
) -> int:
    """Delete what belongs to runs that no longer exist (deleted while no operator was watching): one GET
    per stored run, at the leader's start. Returns how many runs' artifacts went."""
    swept = 0
    try:
        for namespace, run, uid in sorted(await service.stored_runs()):
            body = await get_run(namespace, run)
            if body is None or (body.get("metadata") or {}).get("uid") != uid:
                await delete_artifacts(service, namespace, run, uid)
                swept += 1
    except (errors.StoreError, errors.KubeError) as e:
        log.warning("rules.sweep_failed", error=str(e)[:300])
    if swept:
        log.info("rules.swept", runs=swept)
    return swept


async def delete_artifacts(service: Artifacts, namespace: str, run: str, uid: str) -> None:
    """A deleted E2ERun's artifacts (history pruning, `kubectl delete`): never orphaned, never fatal."""
    if not uid:
        return
    try:
        deleted = await service.delete_run(namespace, run, uid)
    except errors.StoreError as e:
        log.warning("rules.delete_failed", run=run, namespace=namespace, error=str(e))
        return
    if deleted:
        log.info("rules.deleted", run=run, namespace=namespace, objects=deleted)
