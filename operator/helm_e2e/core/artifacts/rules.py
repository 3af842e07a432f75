"""Artifacts (pure): the collector sidecar added to a test's pod, where a test's files live in the store,
what an upload may contain, what a finished test records, and which files the e-mail carries.

The mechanism (docs/artifacts.md): every test container gets HELM_E2E_ARTIFACTS_DIR on an emptyDir; a
native sidecar (an init container with `restartPolicy: Always`, stopped by the kubelet only after the test
containers ended) ships that directory to the operator when it is told to stop, with a token that is good
for that run and test only. The operator validates the upload, stores it, and writes a manifest last: a
test's artifacts exist once their manifest does, never half.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from helm_e2e.core.model import names
from helm_e2e.core.model.run_status import ArtifactFile, PytestFailure, RunStatus

MAX_NAME_BYTES = 255  # one artifact's path, relative to the artifacts directory
_SEGMENT = re.compile(r"^[A-Za-z0-9._+@=,-][A-Za-z0-9 ._+@=,()-]*$")  # no control or shell-ish characters
COLLECTOR_RESOURCES = {
    "requests": {"cpu": "10m", "memory": "32Mi"},
    "limits": {"memory": "128Mi"},
}
# the collector meets the restricted Pod Security Standard whatever the test pod does
COLLECTOR_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@dataclass(frozen=True)
class CollectorSpec:
    """What the collector of one test needs: its image, the directory, where to send, and its token."""

    image: str
    directory: str
    upload_url: str
    token: str
    max_bytes: int  # the test's quota: the emptyDir's size limit is twice it (room for the test's own temp)


class Manifest(BaseModel):
    """`manifest.json` of one test in the store: written last, so it is the commit point of an upload."""

    bundle: str = ""  # the key of the stored tar.gz ("" when the upload was refused)
    files: list[ArtifactFile] = Field(default_factory=list)
    failures: list[PytestFailure] = Field(default_factory=list)  # from the bundle's junit.xml files
    refused: str = ""  # why the last upload was refused (shown as artifactsMessage)
    uploaded_at: datetime | None = None

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


# --- where things live in the store ---
def run_prefix(namespace: str, run: str, uid: str) -> str:
    """A run's artifacts, keyed by its uid too: a later run of the same name never sees them."""
    return f"runs/{namespace}/{run}/{uid}/"


def manifest_key(namespace: str, run: str, uid: str, test: str) -> str:
    return f"{run_prefix(namespace, run, uid)}{test}/manifest.json"


def bundle_key(namespace: str, run: str, uid: str, test: str, digest: str) -> str:
    """Content-addressed, so a new upload of the same test never overwrites the bundle a manifest names."""
    return f"{run_prefix(namespace, run, uid)}{test}/bundle-{digest[:16]}.tar.gz"


# --- the pod ---
def _pod_spec(body: dict[str, Any], kind: str) -> dict[str, Any]:
    spec: dict[str, Any] = body["spec"]["template"]["spec"] if kind == "Job" else body["spec"]
    return spec


def inject_collector(body: Mapping[str, Any], kind: str, spec: CollectorSpec) -> dict[str, Any]:
    """A copy of a test's Pod (or Job) with the artifacts volume, the directory in every container, and
    the collector sidecar first among the init containers (so init containers' files are shipped too)."""
    out = copy.deepcopy(dict(body))
    pod = _pod_spec(out, kind)
    volumes = pod.setdefault("volumes", [])
    if any(v.get("name") == names.ARTIFACTS_VOLUME for v in volumes):
        return out  # already there (a re-created attempt's body): never twice
    volumes.append({"name": names.ARTIFACTS_VOLUME, "emptyDir": {"sizeLimit": str(spec.max_bytes * 2)}})
    for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
        _give_directory(container, spec.directory)
    collector = {
        "name": names.COLLECTOR_CONTAINER,
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", "helm_e2e.collector"],
        "restartPolicy": "Always",  # a native sidecar: stopped after the test containers end
        "env": [
            {"name": names.ARTIFACTS_DIR_ENV, "value": spec.directory},
            {"name": names.UPLOAD_URL_ENV, "value": spec.upload_url},
            {"name": names.UPLOAD_TOKEN_ENV, "value": spec.token},
        ],
        "volumeMounts": [{"name": names.ARTIFACTS_VOLUME, "mountPath": spec.directory, "readOnly": True}],
        "resources": COLLECTOR_RESOURCES,
        "securityContext": COLLECTOR_SECURITY,
    }
    pod["initContainers"] = [collector, *pod.get("initContainers", [])]
    return out


def _give_directory(container: dict[str, Any], directory: str) -> None:
    mounts = container.setdefault("volumeMounts", [])
    if not any(m.get("mountPath") == directory for m in mounts):  # the test's own volume there wins
        mounts.append({"name": names.ARTIFACTS_VOLUME, "mountPath": directory})
    env = container.setdefault("env", [])
    if not any(e.get("name") == names.ARTIFACTS_DIR_ENV for e in env):
        env.append({"name": names.ARTIFACTS_DIR_ENV, "value": directory})


# --- what an upload may hold ---
def check_member_name(name: str) -> str:
    """'' when `name` is a safe relative path for an artifact, else why not (never echoing the name)."""
    if not name or len(name.encode()) > MAX_NAME_BYTES:
        return "a file name is empty or longer than 255 bytes"
    if name.startswith("/") or "\\" in name or "\x00" in name:
        return "a file name is absolute or holds a backslash or NUL"
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts) or posixpath.normpath(name) != name:
        return "a file name is not a plain relative path"
    if not all(_SEGMENT.match(p) for p in parts):
        return "a file name holds characters other than letters, digits, space and ._+@=,()-"
    return ""


def normalize_member_name(raw: str) -> str:
    """tar members may be written `./junit.xml`: the same file as `junit.xml`."""
    while raw.startswith("./"):
        raw = raw[2:]
    return raw.rstrip("/")


def inflated_bound(max_bytes: int, max_files: int) -> int:
    """The most a bundle within the quota can inflate to: its files plus tar headers and padding (at most
    1 KiB per member, and the end-of-archive blocks)."""
    return max_bytes + 1024 * (max_files + 2)


def check_run_quota(other_tests_bytes: int, this_bytes: int, *, max_run_bytes: int) -> str:
    if other_tests_bytes + this_bytes > max_run_bytes:
        return f"the run's artifacts would exceed the per-run quota of {max_run_bytes} bytes"
    return ""


# --- the run's status ---
def record(before: RunStatus, after: RunStatus, manifests: Mapping[str, Manifest]) -> RunStatus:
    """`after` with the artifacts of each test that became final in this step (from its manifest)."""
    was_final = {t.name for t in before.tests if t.phase.is_final}
    if not manifests:
        return after
    status = after.model_copy(deep=True)
    for test in status.tests:
        manifest = manifests.get(test.name)
        if manifest is None or test.name in was_final or not test.phase.is_final:
            continue
        test.artifacts = list(manifest.files)
        test.failures = list(manifest.failures)
        test.artifacts_message = manifest.refused
    return status


# --- the e-mail ---
@dataclass(frozen=True)
class Attachment:
    test: str
    file: ArtifactFile

    @property
    def filename(self) -> str:
        """One flat name per attachment: the test, then the path with '/' as '_'."""
        return f"{self.test}_{self.file.name.replace('/', '_')}"


def choose_attachments(
    files: Sequence[tuple[str, ArtifactFile]], *, budget: int
) -> tuple[list[Attachment], list[Attachment]]:
    """(attached, listed): the smallest files first until the budget is spent; the rest are listed."""
    attached: list[Attachment] = []
    listed: list[Attachment] = []
    spent = 0
    for test, file in sorted(files, key=lambda tf: (tf[1].size, tf[0], tf[1].name)):
        if spent + file.size <= budget:
            attached.append(Attachment(test, file))
            spent += file.size
        else:
            listed.append(Attachment(test, file))
    order = {(t, f.name): i for i, (t, f) in enumerate(files)}
    attached.sort(key=lambda a: order[(a.test, a.file.name)])
    listed.sort(key=lambda a: order[(a.test, a.file.name)])
    return attached, listed


# --- `helm-e2e artifacts`: proof that the caller may read a run's artifacts ---
TICKET_MAX_AGE_SECONDS = 300


def ticket_annotation(nonce: str, now: datetime) -> str:
    """What the CLI writes on the E2ERun (with the user's own rights): a time and the nonce's digest.
    The nonce itself goes to the operator only, through the apiserver's service proxy."""
    return f"{int(now.timestamp())}.{hashlib.sha256(nonce.encode()).hexdigest()}"


def ticket_matches(annotation: str, nonce: str, now: datetime) -> bool:
    """The nonce is the one whose digest the E2ERun carries, written in the last few minutes."""
    when, _, digest = annotation.partition(".")
    if not when.isdigit() or not nonce:
        return False
    age = now.timestamp() - int(when)
    fresh = -60 <= age <= TICKET_MAX_AGE_SECONDS  # a minute of clock skew between the CLI and the operator
    return fresh and hmac.compare_digest(digest, hashlib.sha256(nonce.encode()).hexdigest())
