from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from jwt import PyJWKSet

from services.user.tokens import TokenIssuer, generate_private_key_pem


@pytest.fixture(scope="module")
def issuer() -> TokenIssuer:
    return TokenIssuer(generate_private_key_pem(), "meshmart-test", ttl_seconds=600)


def test_token_claims(issuer: TokenIssuer) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    token, expires = issuer.issue("user-1", now=datetime.now(UTC))
    claims = issuer.verify(token)
    assert claims["sub"] == "user-1" and claims["iss"] == "meshmart-test"
    assert claims["exp"] - claims["iat"] == 600
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": issuer.kid, "typ": "JWT"}
    assert expires > now


def test_jwks_verifies_tokens_like_the_mesh_edge(issuer: TokenIssuer) -> None:
    token, _ = issuer.issue("user-2")
    key = PyJWKSet.from_dict(issuer.jwks())[issuer.kid]
    claims = jwt.decode(token, key.key, algorithms=["ES256"], issuer="meshmart-test")
    assert claims["sub"] == "user-2"
    assert "d" not in issuer.jwks()["keys"][0]  # the private part never leaves


def test_expired_token_rejected(issuer: TokenIssuer) -> None:
    token, _ = issuer.issue("user-3", now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(jwt.ExpiredSignatureError):
        issuer.verify(token)


def test_token_from_another_key_rejected(issuer: TokenIssuer) -> None:
    other = TokenIssuer(generate_private_key_pem(), "meshmart-test", ttl_seconds=600)
    token, _ = other.issue("user-4")
    assert other.kid != issuer.kid
    with pytest.raises(jwt.InvalidSignatureError):
        issuer.verify(token)


def test_rsa_or_garbage_key_refused() -> None:
    with pytest.raises(ValueError):
        TokenIssuer(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n", "i", 1)
