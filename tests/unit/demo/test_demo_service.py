"""The example service's token check: the JWT path the real-node tests exercise end to end."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from demo_service import Unauthorized, verify

SECRET = "s" * 43
JWKS = json.dumps(
    {
        "keys": [
            {
                "kty": "oct",
                "kid": "demo-1",
                "alg": "HS256",
                "k": jwt.utils.base64url_encode(SECRET.encode()).decode(),
            }
        ]
    }
)


def keys() -> dict[str, jwt.PyJWK]:
    return {k.key_id or "": k for k in jwt.PyJWKSet.from_json(JWKS).keys}


def token(audience: str = "demo-service", kid: str = "demo-1", secret: str = SECRET) -> str:
    # an hour: the parametrized tokens are built at collection, minutes before their test runs in a full suite
    claims = {"sub": "helm-e2e", "aud": audience, "exp": int(time.time()) + 3600}
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": kid})


def test_a_token_from_the_key_set_for_the_audience_is_accepted() -> None:
    assert verify(f"Bearer {token()}", keys(), "demo-service")["sub"] == "helm-e2e"


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ("", "missing bearer token"),
        (f"Basic {token()}", "missing bearer token"),
        (f"Bearer {token(audience='other')}", "InvalidAudienceError"),
        (f"Bearer {token(kid='rotated-away')}", "unknown key id 'rotated-away'"),
        (f"Bearer {token(secret='x' * 43)}", "InvalidSignatureError"),
        ("Bearer not-a-jwt", "DecodeError"),
    ],
)
def test_anything_else_is_refused_with_a_reason_that_never_echoes_the_token(header: str, why: str) -> None:
    with pytest.raises(Unauthorized) as refused:
        verify(header, keys(), "demo-service")
    assert why in str(refused.value)
    credential = header.partition(" ")[2]
    assert not credential or credential not in str(refused.value)
