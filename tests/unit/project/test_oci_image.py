"""hack/node/oci_image.py: the hand-written OCI archives (pause, busybox) that containerd imports."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import tarfile
from pathlib import Path
from types import ModuleType

from repo_paths import ROOT


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("oci_image", ROOT / "hack" / "node" / "oci_image.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def blob(archive: tarfile.TarFile, digest: str) -> bytes:
    member = archive.extractfile(f"blobs/sha256/{digest.removeprefix('sha256:')}")
    assert member is not None
    data = member.read()
    assert f"sha256:{hashlib.sha256(data).hexdigest()}" == digest  # content-addressed for real
    return data


def test_archive_is_a_valid_named_oci_layout_with_the_files_and_links(tmp_path: Path) -> None:
    program = tmp_path / "pause"
    program.write_bytes(b"\x7fELF not really")
    out = tmp_path / "image.tar"
    digest = load().write_image(
        "localhost/pause:3.10", out, ["/pause"], [(program, "/pause", 0o755)], [("/bin/sh", "busybox")]
    )
    with tarfile.open(out) as archive:
        assert json.loads(blob_or_file(archive, "oci-layout")) == {"imageLayoutVersion": "1.0.0"}
        index = json.loads(blob_or_file(archive, "index.json"))
        entry = index["manifests"][0]
        assert entry["digest"] == digest
        assert entry["annotations"]["io.containerd.image.name"] == "localhost/pause:3.10"
        manifest = json.loads(blob(archive, digest))
        config = json.loads(blob(archive, manifest["config"]["digest"]))
        layer = blob(archive, manifest["layers"][0]["digest"])
    assert config["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(layer).hexdigest()}"]
    assert config["config"]["Entrypoint"] == ["/pause"]
    assert config["config"]["User"] == "65535:65535"  # never root
    layer_path = tmp_path / "layer.tar"
    layer_path.write_bytes(layer)
    with tarfile.open(layer_path) as files:
        pause, sh = files.getmember("pause"), files.getmember("bin/sh")
    assert (pause.mode, pause.mtime, pause.size) == (0o755, 0, len(program.read_bytes()))
    assert sh.issym()
    assert sh.linkname == "busybox"


def test_same_inputs_give_the_same_digest(tmp_path: Path) -> None:
    program = tmp_path / "p"
    program.write_bytes(b"x")
    write = load().write_image
    first = write("localhost/p:1", tmp_path / "a.tar", ["/p"], [(program, "/p", 0o755)])
    second = write("localhost/p:1", tmp_path / "b.tar", ["/p"], [(program, "/p", 0o755)])
    assert first == second
    program.write_bytes(b"y")
    assert write("localhost/p:1", tmp_path / "c.tar", ["/p"], [(program, "/p", 0o755)]) != first


def blob_or_file(archive: tarfile.TarFile, name: str) -> bytes:
    member = archive.extractfile(name)
    assert member is not None
    return member.read()
