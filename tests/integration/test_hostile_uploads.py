"""Hostile artifact uploads against the real operator's upload server (real HTTP, real apiserver, kwok pods):
one test's own token is all an attacker in a test pod holds. A bundle whose tar headers would make Python's
tarfile read tens of MiB into memory — a huge PAX header, a huge GNU long name, a flood of entries — is
refused with a clear 4xx, the refusal is the test's artifactsMessage, the operator's peak RSS barely moves,
and the server still takes a normal upload afterwards.

Measured on the development machine with these three uploads (46 KB, 46 KB and 235 KB): before headers were
checked the operator's VmHWM went from 131 to 303 MiB (tarfile held the 45 MiB PAX header, its regex match
and its decoded value at once) and the PAX bundle and the 50,000 directories were stored (201); now it goes
from 131 to 132 MiB and all three are refused (422).
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

from harness import Cluster, OperatorProcess, free_tcp_port, node_ip
from test_artifacts import DEMO, collector_env, suite, tar_gz, upload
from test_hostile import peak_rss_mib
from test_operator import wait_run

from helm_e2e.core.model import names

RSS_GROWTH_MIB = 30  # what a refused hostile upload may add to the operator's peak resident set
HEADER_BYTES = 45 * 2**20  # well within the default quota's inflated bound (50 MiB + 1 KiB per file)


def extended_header_gz(path: Path, kind: bytes, size: int) -> bytes:
    """A tar.gz of one extended header (PAX 'x' or GNU long name 'L') of `size` bytes, then a file."""
    info = tarfile.TarInfo("h")
    info.type, info.size = kind, size
    first = b"%d comment=" % size if kind == tarfile.XHDTYPE else b"n"
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(info.tobuf(tarfile.USTAR_FORMAT) + first)
        left = size - len(first) - 1
        while left > 0:
            out.write(b"c" * min(left, 2**20))
            left -= 2**20
        out.write(b"\n" + b"\0" * (-size % 512))
        file = tarfile.TarInfo("a.txt")
        file.size = 1
        out.write(file.tobuf(tarfile.USTAR_FORMAT) + b"a" + b"\0" * 511 + b"\0" * 1024)
    return path.read_bytes()


def many_entries_gz(count: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for i in range(count):
            info = tarfile.TarInfo(f"d{i}")
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
    return out.getvalue()


def test_hostile_tar_headers_are_refused_with_a_reason_and_cost_the_operator_no_memory(
    crds: Cluster, namespace: str, tmp_path: Path
) -> None:
    cluster, port = crds, free_tcp_port()
    op = OperatorProcess(
        cluster,
        namespace,
        tmp_path,
        {
            "HELM_E2E_ARTIFACTS_STORE": str(tmp_path / "artifacts"),
            "HELM_E2E_ARTIFACTS_URL": f"http://{node_ip()}:{port}",
            "HELM_E2E_ARTIFACTS_PORT": str(port),
            "HELM_E2E_COLLECTOR_IMAGE": "localhost/helm-e2e:dev",
            "HELM_E2E_RUN_CHART_HOOKS": "false",
        },
    ).start()
    tests = ("pax", "longname", "entries", "normal")
    try:
        for name in tests:
            cluster.apply(suite(name, seconds=25), namespace)
        cluster.helm("install", "demo", DEMO, "-n", namespace)
        env = {name: collector_env(cluster, namespace, f"demo-1-{name}") for name in tests}
        bodies = {
            "pax": extended_header_gz(tmp_path / "pax.tgz", tarfile.XHDTYPE, HEADER_BYTES),
            "longname": extended_header_gz(tmp_path / "long.tgz", tarfile.GNUTYPE_LONGNAME, HEADER_BYTES),
            "entries": many_entries_gz(50_000),
        }
        assert max(len(b) for b in bodies.values()) < 1_000_000  # small uploads, all of them
        before = peak_rss_mib(op)
        answers = {
            name: upload(env[name][names.UPLOAD_URL_ENV], env[name][names.UPLOAD_TOKEN_ENV], body)
            for name, body in bodies.items()
        }
        after = peak_rss_mib(op)
        print(f"\nhostile uploads: operator VmHWM {before:.0f} -> {after:.0f} MiB; answers {answers}")
        assert answers["pax"][0] == 422, answers
        assert "tar header (PAX or GNU long name) is larger than 8192 bytes" in answers["pax"][1]
        assert answers["longname"][0] == 422, answers
        assert "larger than 8192 bytes" in answers["longname"][1]
        assert answers["entries"][0] == 422, answers
        assert "more than 2000 entries" in answers["entries"][1]
        assert after - before < RSS_GROWTH_MIB, f"VmHWM grew {after - before:.0f} MiB"
        # the server is still there for the honest
        ok = upload(
            env["normal"][names.UPLOAD_URL_ENV], env["normal"][names.UPLOAD_TOKEN_ENV], tar_gz({"a": b"a"})
        )
        assert ok[0] == 201, ok

        run = wait_run(cluster, namespace, "demo-1", timeout=120)
        results = {t["name"]: t for t in run["status"]["tests"]}
        assert "larger than 8192 bytes" in results["pax"]["artifactsMessage"]
        assert "larger than 8192 bytes" in results["longname"]["artifactsMessage"]
        assert "more than 2000 entries" in results["entries"]["artifactsMessage"]
        assert all(results[name].get("artifacts", []) == [] for name in bodies)
        assert [f["name"] for f in results["normal"]["artifacts"]] == ["a"]
        op.assert_alive()
    finally:
        op.stop()
