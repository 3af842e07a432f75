"""Mint a JWT from a JWK (set) and write it, mode 0400, to a shared volume. Never prints the token or key.

Key choice: `--kid`, else the newest key — the one with the highest `iat` (or `nbf`) member, and when no
key carries one, the last key of the set (key sets are conventionally appended to on rotation).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from jwt.exceptions import InvalidKeyError, PyJWKError

ALGORITHMS = {("oct", None): "HS256", ("RSA", None): "RS256", ("EC", "P-256"): "ES256"}
REGISTERED = {"iss", "sub", "aud", "exp", "nbf", "iat", "jti"}


class SetupError(Exception):
    """A one-line reason; never contains key material."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="jwt-setup", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument(
        "--key-file", default="/jwt-keys/jwks.json", help="JWK set or single JWK (file or directory)"
    )
    p.add_argument("--kid", help="key id to sign with (default: the newest key)")
    p.add_argument("--audience", action="append", default=[], help="aud claim (repeatable)")
    p.add_argument("--subject", help="sub claim")
    p.add_argument("--issuer", help="iss claim")
    p.add_argument("--expires-in", type=int, default=3600, help="lifetime in seconds (default 3600)")
    p.add_argument(
        "--claim",
        action="append",
        default=[],
        metavar="K=V",
        help="extra claim, V parsed as JSON if it can be",
    )
    p.add_argument("--out", default="/access_tokens/token.jwt", help="where to write the token")
    return p.parse_args(argv)


def read_keys(path: Path) -> list[dict[str, Any]]:
    if path.is_dir():
        files = [f for f in sorted(path.iterdir()) if f.is_file() and not f.name.startswith(".")]
        named = [f for f in files if f.name == "jwks.json"]
        if len(named) != 1 and len(files) != 1:
            raise SetupError(f"{path} is a directory without jwks.json or a single key file")
        path = (named or files)[0]
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise SetupError(f"key file {path} does not exist") from e
    except (OSError, ValueError) as e:  # the message names the file, never its content
        raise SetupError(f"key file {path} is not readable JSON") from e
    keys = doc.get("keys") if isinstance(doc, dict) and "keys" in doc else [doc]
    if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
        raise SetupError(f"key file {path} holds no JWK")
    return keys


def pick_key(keys: list[dict[str, Any]], kid: str | None) -> dict[str, Any]:
    if kid is not None:
        for key in keys:
            if key.get("kid") == kid:
                return key
        known = ", ".join(str(k.get("kid")) for k in keys)
        raise SetupError(f"no key with kid {kid!r} (kids: {known})")
    dated = [k for k in keys if isinstance(k.get("iat", k.get("nbf")), int | float)]
    if dated:
        return max(dated, key=lambda k: float(k.get("iat", k.get("nbf")) or 0))
    return keys[-1]


def algorithm_for(key: dict[str, Any]) -> str:
    kty, crv = key.get("kty"), key.get("crv")
    alg = ALGORITHMS.get((str(kty), None if kty != "EC" else crv))
    if alg is None:
        raise SetupError(f"unsupported key type {kty}{'/' + str(crv) if crv else ''} (oct, RSA, EC P-256)")
    if key.get("alg") not in (None, alg):
        raise SetupError(f"key alg {key.get('alg')} does not match its type {kty} (expected {alg})")
    if kty in ("RSA", "EC") and "d" not in key:
        raise SetupError(f"key {key.get('kid', '?')} is a public key; signing needs the private key")
    return alg


def build_claims(args: argparse.Namespace, now: int) -> dict[str, Any]:
    claims: dict[str, Any] = {"iat": now, "nbf": now, "exp": now + args.expires_in}
    if args.audience:
        claims["aud"] = args.audience[0] if len(args.audience) == 1 else args.audience
    for name, value in (("sub", args.subject), ("iss", args.issuer)):
        if value:
            claims[name] = value
    for item in args.claim:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SetupError(f"--claim {key or item!r} is not K=V")
        if key in REGISTERED:
            raise SetupError(f"--claim {key} would override a registered claim; use its own flag")
        try:
            claims[key] = json.loads(raw)
        except ValueError:
            claims[key] = raw
    return claims


def write_atomically(path: Path, data: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".token-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(data)
        os.chmod(tmp, 0o400)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run(args: argparse.Namespace) -> str:
    if args.expires_in <= 0:
        raise SetupError("--expires-in must be positive")
    key = pick_key(read_keys(Path(args.key_file)), args.kid)
    alg = algorithm_for(key)
    try:
        signing_key = jwt.PyJWK(key, algorithm=alg).key
    except (PyJWKError, InvalidKeyError, ValueError, TypeError) as e:
        raise SetupError(f"key {key.get('kid', '?')} is malformed ({type(e).__name__})") from e
    claims = build_claims(args, int(time.time()))
    headers = {"kid": key["kid"]} if "kid" in key else None
    token = jwt.encode(claims, signing_key, algorithm=alg, headers=headers)
    write_atomically(Path(args.out), token)
    expires = datetime.fromtimestamp(claims["exp"], UTC).isoformat()
    return f"jwt-setup: wrote token kid={key.get('kid', '-')} alg={alg} exp={expires} to {args.out}"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        print(run(args))
    except SetupError as e:
        print(f"jwt-setup: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"jwt-setup: error: {type(e).__name__} writing the token: {e.strerror}", file=sys.stderr)
        return 1
    return 0
