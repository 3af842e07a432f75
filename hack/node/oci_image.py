"""Write a one-layer OCI image archive from a few files, for `ctr images import` (no registry, no engine).

Used for the pod sandbox (pause) image: one static binary needs no build tool. The layer is
deterministic (fixed mtimes, sorted entries), so the image digest only changes when the files do.

    python3 oci_image.py --name localhost/pause:3.10 --out pause.tar --entrypoint /pause \
        --file /tmp/pause:/pause:0755
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tarfile
from pathlib import Path


def _blob(tar: tarfile.TarFile, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo(f"blobs/sha256/{digest}")
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
    return f"sha256:{digest}"


def _layer(files: list[tuple[Path, str, int]], symlinks: list[tuple[str, str]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as layer:
        for src, dst, mode in sorted(files, key=lambda f: f[1]):
            data = src.read_bytes()
            info = tarfile.TarInfo(dst.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), mode, 0
            layer.addfile(info, io.BytesIO(data))
        for dst, target in sorted(symlinks):
            info = tarfile.TarInfo(dst.lstrip("/"))
            info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, target, 0o777, 0
            layer.addfile(info)
    return out.getvalue()


def write_image(
    name: str,
    out: Path,
    entrypoint: list[str],
    files: list[tuple[Path, str, int]],
    symlinks: list[tuple[str, str]] = [],  # noqa: B006 (never mutated)
) -> str:
    layer = _layer(files, symlinks)
    diff_id = f"sha256:{hashlib.sha256(layer).hexdigest()}"
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": entrypoint,
            "User": "65535:65535",
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    with tarfile.open(out, mode="w") as tar:
        config_bytes = json.dumps(config, sort_keys=True).encode()
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _blob(tar, config_bytes),
                "size": len(config_bytes),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": _blob(tar, layer),
                    "size": len(layer),
                }
            ],
        }
        manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
        manifest_digest = _blob(tar, manifest_bytes)
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": manifest_digest,
                    "size": len(manifest_bytes),
                    "platform": {"architecture": "amd64", "os": "linux"},
                    "annotations": {
                        "io.containerd.image.name": name,
                        "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1],
                    },
                }
            ],
        }
        for member, data in (
            ("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
            ("index.json", json.dumps(index, sort_keys=True).encode()),
        ):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return manifest_digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="image name, e.g. localhost/pause:3.10")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--entrypoint", required=True, nargs="+")
    parser.add_argument("--file", action="append", required=True, help="SRC:DST[:OCTAL_MODE]")
    parser.add_argument("--symlink", action="append", default=[], help="DST:TARGET")
    args = parser.parse_args()
    files = []
    for spec in args.file:
        src, dst, *mode = spec.split(":")
        files.append((Path(src), dst, int(mode[0], 8) if mode else 0o644))
    links = [(dst, target) for dst, target in (spec.split(":", 1) for spec in args.symlink)]
    print(write_image(args.name, args.out, args.entrypoint, files, links))


if __name__ == "__main__":
    main()
