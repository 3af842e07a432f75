"""jwt-setup: tokens verified with PyJWT against the public key; errors are one line without secrets."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, HMACAlgorithm, RSAAlgorithm

from jwt_setup.cli import main


def rsa_pair(kid: str, **extra: Any) -> tuple[dict[str, Any], Any]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {**json.loads(RSAAlgorithm.to_jwk(private)), "kid": kid, **extra}, private.public_key()


def ec_pair(kid: str) -> tuple[dict[str, Any], Any]:
    private = ec.generate_private_key(ec.SECP256R1())
    return {**json.loads(ECAlgorithm.to_jwk(private)), "kid": kid}, private.public_key()


def oct_key(kid: str, secret: bytes = b"0123456789abcdef0123456789abcdef") -> dict[str, Any]:
    return {**json.loads(HMACAlgorithm.to_jwk(secret)), "kid": kid}


def write_keys(tmp_path: Path, keys: list[dict[str, Any]] | dict[str, Any]) -> Path:
    path = tmp_path / "keys" / "jwks.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"keys": keys} if isinstance(keys, list) else keys))
    return path


def mint(tmp_path: Path, key_file: Path, *args: str) -> tuple[int, Path]:
    out = tmp_path / "tokens" / "token.jwt"
    return main(["--key-file", str(key_file), "--out", str(out), *args]), out


def test_rs256_token_verifies_with_the_public_key_and_carries_the_claims(tmp_path: Path) -> None:
    jwk, public = rsa_pair("rsa-1")
    code, out = mint(
        tmp_path,
        write_keys(tmp_path, [jwk]),
        "--audience",
        "api",
        "--subject",
        "ci",
        "--issuer",
        "helm-e2e",
        "--expires-in",
        "600",
        "--claim",
        "revision=7",
        "--claim",
        "team=shop",
    )
    assert code == 0
    token = out.read_text()
    claims = jwt.decode(token, public, algorithms=["RS256"], audience="api", issuer="helm-e2e")
    assert (claims["sub"], claims["revision"], claims["team"]) == ("ci", 7, "shop")
    assert claims["exp"] - claims["iat"] == 600
    assert jwt.get_unverified_header(token)["kid"] == "rsa-1"


def test_es256_and_hs256_follow_the_key_type(tmp_path: Path) -> None:
    jwk, public = ec_pair("ec-1")
    code, out = mint(tmp_path, write_keys(tmp_path, [jwk]), "--audience", "a")
    assert code == 0
    assert jwt.decode(out.read_text(), public, algorithms=["ES256"], audience="a")
    out.unlink()
    code, out = mint(tmp_path, write_keys(tmp_path, oct_key("hs")), "--audience", "a", "--audience", "b")
    assert code == 0
    claims = jwt.decode(
        out.read_text(), b"0123456789abcdef0123456789abcdef", algorithms=["HS256"], audience="b"
    )
    assert claims["aud"] == ["a", "b"]


def test_kid_selects_the_key_and_otherwise_the_newest_signs(tmp_path: Path) -> None:
    old, old_pub = rsa_pair("old", iat=100)
    new, new_pub = rsa_pair("new", iat=200)
    keys = write_keys(tmp_path, [new, old])
    code, out = mint(tmp_path, keys)
    assert code == 0
    assert jwt.get_unverified_header(out.read_text())["kid"] == "new"
    jwt.decode(out.read_text(), new_pub, algorithms=["RS256"])
    out.unlink()
    code, out = mint(tmp_path, keys, "--kid", "old")
    jwt.decode(out.read_text(), old_pub, algorithms=["RS256"])


def test_without_dates_the_last_key_of_the_set_is_the_newest(tmp_path: Path) -> None:
    code, out = mint(tmp_path, write_keys(tmp_path, [oct_key("first"), oct_key("last")]))
    assert code == 0
    assert jwt.get_unverified_header(out.read_text())["kid"] == "last"


def test_token_file_is_read_only_and_no_temporary_file_is_left(tmp_path: Path) -> None:
    code, out = mint(tmp_path, write_keys(tmp_path, [oct_key("k")]))
    assert code == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o400
    assert sorted(p.name for p in out.parent.iterdir()) == ["token.jwt"]


def test_a_directory_key_file_uses_its_jwks_json(tmp_path: Path) -> None:
    keys = write_keys(tmp_path, [oct_key("k")])
    code, _ = mint(tmp_path, keys.parent)
    assert code == 0


def test_success_output_names_the_key_but_never_the_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jwk, _ = rsa_pair("rsa-1")
    code, out = mint(tmp_path, write_keys(tmp_path, [jwk]))
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out.startswith("jwt-setup: wrote token kid=rsa-1 alg=RS256")
    assert out.read_text() not in captured.out
    assert jwk["d"] not in captured.out


@pytest.mark.parametrize(
    ("keys", "args", "reason"),
    [
        (None, [], "does not exist"),
        ("{not json", [], "not readable JSON"),
        ({"keys": []}, [], "holds no JWK"),
        ([{"kty": "oct", "k": "c2VjcmV0", "kid": "a"}], ["--kid", "b"], "no key with kid 'b'"),
        ([{"kty": "OKP", "crv": "Ed25519", "x": "abc", "d": "def"}], [], "unsupported key type OKP"),
        ([{"kty": "oct", "k": "c2VjcmV0", "alg": "RS256"}], [], "does not match"),
        ("public-rsa", [], "public key"),
        ([{"kty": "RSA", "n": "!!", "e": "AQAB", "d": "!!"}], [], "malformed"),
        ([{"kty": "oct", "k": "c2VjcmV0"}], ["--claim", "exp=1"], "registered claim"),
        ([{"kty": "oct", "k": "c2VjcmV0"}], ["--claim", "novalue"], "not K=V"),
        ([{"kty": "oct", "k": "c2VjcmV0"}], ["--expires-in", "0"], "must be positive"),
    ],
)
def test_bad_keys_and_arguments_exit_nonzero_with_one_line_and_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keys: Any, args: list[str], reason: str
) -> None:
    key_file = tmp_path / "missing.json"
    if keys == "public-rsa":
        jwk, _ = rsa_pair("pub")
        keys = [{k: v for k, v in jwk.items() if k in ("kty", "n", "e", "kid")}]
    if isinstance(keys, str):
        key_file.write_text(keys)
    elif keys is not None:
        key_file = write_keys(tmp_path, keys)
    code, out = mint(tmp_path, key_file, *args)
    captured = capsys.readouterr()
    assert code == 1
    assert not out.exists()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("jwt-setup: error: ")
    assert reason in lines[0]
    assert "c2VjcmV0" not in captured.err + captured.out
    assert "{not json" not in captured.err
