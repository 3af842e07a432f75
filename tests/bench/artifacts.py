"""`make bench-artifacts`: what an artifact set costs the operator end to end. Prints numbers; never fails.

1. receive and store a 50 MiB artifact set (BENCH_QUICK=1: 5 MiB): a real HTTP upload (tar.gz of 100
   incompressible files) to the operator's upload server (aiohttp, in this process, on a local port) over a
   local-directory store: token check, streaming to disk, the bounded tar read (sizes, sha256, junit.xml),
   the content-addressed put and the manifest;
2. attach 5 MiB to a report e-mail: read the chosen files back from the stored bundle and build the MIME
   message (as the executor does before handing it to SMTP).
Peak RSS is the process's VmHWM, reset before each step (/proc/self/clear_refs); "base" is the RSS before it.
"""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from helm_e2e.artifacts.server import ArtifactServer, upload_limit
from helm_e2e.artifacts.service import Artifacts
from helm_e2e.artifacts.store import open_store
from helm_e2e.core.artifacts import rules
from helm_e2e.core.model.release import Trigger
from helm_e2e.core.model.run import ReleaseRef, Run, RunSpec
from helm_e2e.core.outcomes import report
from helm_e2e.core.results.junit_reader import failures_from_junit
from helm_e2e.settings import Settings

MiB = 1024 * 1024
QUICK = os.environ.get("BENCH_QUICK") == "1"
SET_BYTES = (5 if QUICK else 50) * MiB
FILES = 100
MAIL_BYTES = 5 * MiB


def rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def reset_peak() -> int:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    return rss_kib("VmRSS")


def artifact_set() -> bytes:
    out = io.BytesIO()
    size = SET_BYTES // FILES
    with tarfile.open(fileobj=out, mode="w:gz", compresslevel=1) as tar:
        junit = b'<testsuite><testcase classname="t" name="a" file="t.py"/></testsuite>'
        for i, data in enumerate([junit] + [secrets.token_bytes(size) for _ in range(FILES - 1)]):
            info = tarfile.TarInfo("junit.xml" if i == 0 else f"screens/shot-{i:03}.png")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-artifacts-") as tmp:
        settings = Settings(
            artifacts_store=f"{tmp}/store",
            artifacts_url="http://127.0.0.1",
            collector_image="img",
            artifacts_max_test_bytes=SET_BYTES + MiB,
            artifacts_max_run_bytes=4 * SET_BYTES,
        )
        service = Artifacts(
            open_store(settings.artifacts_store), settings, parse_failures=failures_from_junit
        )
        ref = ReleaseRef(
            name="web", namespace="shop", revision=1, chart="web", chart_version="1", trigger=Trigger.UPGRADE
        )
        run = Run(name="web-1", namespace="shop", uid="u1", spec=RunSpec(release=ref))
        token = await service.mint(run, "ui", now=datetime.now(UTC))
        body = artifact_set()

        async def get_run(namespace: str, name: str) -> None:
            return None

        server = ArtifactServer(service, get_run, max_upload_bytes=upload_limit(settings))
        async with TestServer(server.app()) as ts, ClientSession() as http:
            base = reset_peak()
            start = time.perf_counter()
            reply = await http.post(
                ts.make_url("/v1/uploads"), data=body, headers={"Authorization": f"Bearer {token}"}
            )
            answer = await reply.json()
            took = time.perf_counter() - start
            peak = rss_kib("VmHWM")
        print(
            f"receive+store {SET_BYTES / MiB:.0f} MiB set ({FILES} files, {len(body) / MiB:.1f} MiB on the wire): "
            f"{reply.status} {answer} in {took:.2f} s ({SET_BYTES / MiB / took:.0f} MiB/s), "
            f"peak RSS +{(peak - base) / 1024:.1f} MiB over {base / 1024:.0f} MiB "
            "(this process also holds the client's copy of the body)"
        )

        manifest = await service.manifest("shop", "web-1", "u1", "ui")
        assert manifest is not None
        files = [("ui", f) for f in manifest.files]
        chosen, listed = rules.choose_attachments(files, budget=MAIL_BYTES)
        base = reset_peak()
        start = time.perf_counter()
        found = await service.read_files(manifest, {a.file.name for a in chosen}, max_bytes=MAIL_BYTES)
        rendered = report.Report(subject="s", text="t", html="<p>h</p>", message_id="<m@x>")
        message = report.build_email(
            rendered,
            sender="a@example.com",
            recipients=["b@example.com"],
            attachments=[(a.filename, found[a.file.name]) for a in chosen],
        )
        wire = message.as_bytes()
        took = time.perf_counter() - start
        peak = rss_kib("VmHWM")
        print(
            f"attach {sum(len(v) for v in found.values()) / MiB:.1f} MiB ({len(chosen)} files, {len(listed)} listed) "
            f"to a report: {took:.2f} s, message {len(wire) / MiB:.1f} MiB, peak RSS +{(peak - base) / 1024:.1f} MiB"
        )


if __name__ == "__main__":
    asyncio.run(main())
