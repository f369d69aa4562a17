"""ES256 access tokens and the JWKS that lets the mesh edge verify them."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from jwt.algorithms import ECAlgorithm

ALGORITHM = "ES256"


class TokenIssuer:
    def __init__(self, private_key_pem: bytes, issuer: str, ttl_seconds: int) -> None:
        key = load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("jwt signing key must be an EC P-256 private key (ES256)")
        self._key = key
        self.issuer = issuer
        self.ttl = timedelta(seconds=ttl_seconds)
        public_jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(key.public_key()))
        self.kid = _thumbprint(public_jwk)
        self.public_jwk = {**public_jwk, "kid": self.kid, "use": "sig", "alg": ALGORITHM}

    def issue(self, subject: str, now: datetime | None = None) -> tuple[str, datetime]:
        issued = (now or datetime.now(UTC)).replace(microsecond=0)
        expires = issued + self.ttl
        claims = {"sub": subject, "iss": self.issuer, "iat": issued, "exp": expires}
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.kid})
        return token, expires

    def verify(self, token: str) -> dict[str, Any]:
        """What the mesh edge does with the JWKS; used by tests and tools."""
        claims: dict[str, Any] = jwt.decode(
            token,
            self._key.public_key(),
            algorithms=[ALGORITHM],
            issuer=self.issuer,
            options={"require": ["sub", "exp", "iat", "iss"]},
        )
        return claims

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [self.public_jwk]}


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 key id: stable for a key, different for the next one (key rotation)."""
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def generate_private_key_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
