"""The artifacts collector: the native sidecar of every test pod (`python -m helm_e2e.collector`).

It waits. When the kubelet stops it — after the test containers have ended, since it is an init container
with `restartPolicy: Always` — it streams HELM_E2E_ARTIFACTS_DIR as a tar.gz to the operator with its own
token, prints one line saying what happened, and exits 0: shipping evidence never changes a test's result.
An operator busy with other uploads answers 503 (or 429) with Retry-After: the collector waits that long
(at most RETRY_MAX_SECONDS) and ships again, a few times, as long as its time allows.

Standard library only, and nothing else of helm_e2e: it starts in milliseconds in any pod.
"""

from __future__ import annotations

import os
import signal
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

TIMEOUT_SECONDS = 25.0  # within the pod's default 30 s termination grace period
CHUNK = 1 << 16
RETRY_STATUSES = frozenset({429, 503})  # the operator is busy: the same upload may succeed later
MAX_ATTEMPTS = 4
RETRY_MAX_SECONDS = 10.0  # a longer Retry-After is shortened to this
RETRY_DEFAULT_SECONDS = 2.0  # without a usable Retry-After


class _Pipe:
    """A file-like sink that hands tar.gz chunks to the HTTP body iterator (bounded queue of one)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._cond = threading.Condition()
        self._closed = False

    def write(self, data: bytes) -> int:
        with self._cond:
            self._cond.wait_for(lambda: not self._chunks or self._closed)
            if self._closed:  # nobody reads any more (the answer came first): drop, never pile up
                return len(data)
            self._chunks.append(bytes(data))
            self._cond.notify_all()
        return len(data)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def flush(self) -> None:
        pass

    def __iter__(self) -> Iterator[bytes]:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._chunks) or self._closed)
                if not self._chunks:
                    return
                chunk = self._chunks.pop()
                self._cond.notify_all()
            yield chunk


def _files(root: Path) -> list[Path]:
    """Regular files under root (symlinks are not followed: they are not the test's own bytes)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                found.append(path)
    return found


def _write_tar(root: Path, files: list[Path], sink: _Pipe, skipped: list[str]) -> None:
    try:
        with tarfile.open(fileobj=sink, mode="w|gz") as tar:  # type: ignore[call-overload]
            for path in files:
                try:
                    tar.add(path, arcname=str(path.relative_to(root)), recursive=False)
                except OSError:
                    skipped.append(str(path.relative_to(root)))  # unreadable (another user's 0600 file)
    finally:
        sink.close()


def retry_delay(status: int, retry_after: str | None) -> float | None:
    """Seconds to wait before shipping again after an answer `status`, or None: do not ship again."""
    if status not in RETRY_STATUSES:
        return None
    try:
        seconds = float(retry_after or "")
    except ValueError:  # absent, or an HTTP date: not worth parsing in a sidecar
        return RETRY_DEFAULT_SECONDS
    return min(seconds, RETRY_MAX_SECONDS) if seconds >= 0 else RETRY_DEFAULT_SECONDS  # NaN: not >= 0


def _send(
    root: Path, files: list[Path], url: str, token: str, timeout: float
) -> tuple[str, float | None, int]:
    """One upload: (outcome, seconds before another try or None, unreadable files skipped)."""
    sink, skipped = _Pipe(), list[str]()
    writer = threading.Thread(target=_write_tar, args=(root, files, sink, skipped), daemon=True)
    writer.start()
    request = urllib.request.Request(  # noqa: S310 - the operator's URL, set by the operator
        url,
        data=iter(sink),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/gzip"},
    )
    retry: float | None = None
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310
            answer = reply.read(2048).decode(errors="replace")
            outcome = f"shipped {len(files)} files: {reply.status} {answer}"
    except urllib.error.HTTPError as e:
        outcome = f"refused {e.code}: {e.read(2048).decode(errors='replace')}"
        retry = retry_delay(e.code, e.headers.get("Retry-After"))
    except (urllib.error.URLError, OSError) as e:
        outcome = f"could not reach the operator: {type(e).__name__}"
    sink.close()  # a writer whose reader is gone drops the rest and ends
    writer.join(timeout=TIMEOUT_SECONDS)
    return outcome, retry, len(skipped)


def ship(
    root: Path,
    url: str,
    token: str,
    *,
    budget_seconds: float = TIMEOUT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Send the directory, again while the operator is busy and time allows; one line for the log."""
    files = _files(root) if root.is_dir() else []
    if not files:
        return "helm-e2e collector: no artifacts"
    deadline = time.monotonic() + budget_seconds
    for attempt in range(1, MAX_ATTEMPTS + 1):
        outcome, retry, skipped = _send(root, files, url, token, max(1.0, deadline - time.monotonic()))
        if retry is None or attempt == MAX_ATTEMPTS or time.monotonic() + retry + 1.0 > deadline:
            break
        sleep(retry)
    tries = f" after {attempt} attempts" if attempt > 1 else ""
    note = f" (unreadable, not shipped: {skipped})" if skipped else ""
    return f"helm-e2e collector: {outcome}{tries}{note}"


def main() -> int:
    directory = os.environ.get("HELM_E2E_ARTIFACTS_DIR", "/artifacts")
    url, token = os.environ.get("HELM_E2E_UPLOAD_URL", ""), os.environ.get("HELM_E2E_UPLOAD_TOKEN", "")
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    print("helm-e2e collector: waiting for the test to end", flush=True)
    while not stop.wait(3600):
        pass
    if not url or not token:
        print("helm-e2e collector: no upload URL or token; nothing shipped", flush=True)
        return 0
    print(ship(Path(directory), url, token), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
