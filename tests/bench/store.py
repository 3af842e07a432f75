"""`make bench-store`: the artifact store's cost, into a local directory (file://) and into a real S3-compatible
server (versitygw on this machine, started like the integration tests' s3_server). Prints numbers; never fails.

For each backend: time and peak RSS to put a 50 MiB artifact set, as one ~50 MiB tar.gz (one streamed
multipart put_file) and as 500 small files (~100 KiB each, 8 puts in flight), then to read 5 MiB back (one
get_bytes, as a mail attachment would be, and one download to a file). Peak RSS is the process's VmHWM,
reset before each step (/proc/self/clear_refs), so each line's peak belongs to that step; "base" is the RSS
before it (Python + obstore). Both backends share this machine's disk and CPUs with whatever else runs.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import obstore
from harness import s3_gateway

from helm_e2e.artifacts import store as store_module
from helm_e2e.artifacts.store import ArtifactStore, open_store

MiB = 1024 * 1024
SMALL_FILES = 500
SMALL_SIZE = 50 * MiB // SMALL_FILES
READ_SIZE = 5 * MiB


def rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


async def measure(name: str, size: int, step: Callable[[], Awaitable[object]]) -> None:
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    base = rss_kib("VmRSS")
    started = time.perf_counter()
    await step()
    elapsed = time.perf_counter() - started
    peak = rss_kib("VmHWM")
    print(
        f"  {name:<44} {elapsed:7.3f} s  {size / MiB / elapsed:8.1f} MiB/s  "
        f"peak RSS {peak / 1024:6.1f} MiB (base {base / 1024:5.1f}, +{(peak - base) / 1024:5.1f})",
        flush=True,
    )


def make_inputs(workdir: Path) -> tuple[Path, list[Path]]:
    tarball = workdir / "artifacts.tar.gz"
    with tarball.open("wb") as f:  # random bytes: as incompressible as a real tar.gz
        for _ in range(50):
            f.write(secrets.token_bytes(MiB))
    small_dir = workdir / "small"
    small_dir.mkdir()
    smalls = []
    for i in range(SMALL_FILES):
        path = small_dir / f"file-{i:03d}.json"
        path.write_bytes(secrets.token_bytes(SMALL_SIZE))
        smalls.append(path)
    return tarball, smalls


async def bench(store: ArtifactStore, label: str, tarball: Path, smalls: list[Path], out: Path) -> None:
    print(f"{label} ({store.description})", flush=True)
    await measure("put_file 1 x 50 MiB tar.gz", 50 * MiB, lambda: store.put_file("run/api/a.tar.gz", tarball))

    async def put_smalls() -> None:
        gate = asyncio.Semaphore(8)

        async def put(path: Path) -> None:
            async with gate:
                await store.put_file(f"run/api/files/{path.name}", path)

        await asyncio.gather(*(put(p) for p in smalls))

    await measure(
        f"put_file {SMALL_FILES} x {SMALL_SIZE // 1024} KiB files", SMALL_FILES * SMALL_SIZE, put_smalls
    )
    await store.put_bytes("run/api/attach.bin", secrets.token_bytes(READ_SIZE))
    await measure(
        "get_bytes 5 MiB (a mail attachment)",
        READ_SIZE,
        lambda: store.get_bytes("run/api/attach.bin", max_bytes=READ_SIZE),
    )
    await measure(
        "download 5 MiB to a file",
        READ_SIZE,
        lambda: store.download("run/api/attach.bin", out / f"{label}.bin", max_bytes=READ_SIZE),
    )
    listed = await store.list("run")
    started = time.perf_counter()
    deleted = await store.delete_prefix("run")
    print(
        f"  delete_prefix of {len(listed)} objects: {deleted} deleted in {time.perf_counter() - started:.3f} s"
    )


async def main() -> None:
    print(
        f"obstore {obstore.__version__}; part size {store_module.PART_SIZE // MiB} MiB, "
        f"{store_module.PART_CONCURRENCY} parts in flight",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        workdir = Path(tmp)
        tarball, smalls = make_inputs(workdir)
        out = workdir / "out"
        out.mkdir()
        await bench(open_store(f"file://{workdir / 'local-store'}"), "file", tarball, smalls, out)
        with s3_gateway(workdir / "s3", bucket="bench") as server:
            os.environ.update(server.env)
            await bench(open_store(server.url("helm-e2e")), "versitygw", tarball, smalls, out)


if __name__ == "__main__":
    asyncio.run(main())
