"""Who the caller is, as the mesh verified it, and the owner check each service makes itself.

The mesh authenticates: the sidecar in front of the app verifies the caller's token
(RequestAuthentication, istio/request-authentication-services-jwt.yaml) and hands the app its
verified payload, base64url-encoded, in `x-jwt-payload` (outputPayloadToHeader). Envoy's
jwt_authn removes any value a client sent for that header before verifying, so the header
exists only for a token the sidecar checked. Nothing here re-verifies a signature: there is no
token in hand, only the payload the sidecar vouches for.

Each service authorizes its own objects: an operation that belongs to a user (`{userId}` in
its path) answers 403 unless the token's subject is that user (OWASP API1).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from enum import Enum

from aiohttp import web

from services.common.errors import ProblemError

PAYLOAD_HEADER = "x-jwt-payload"
OWNER_PARAMETER = "userId"
MAX_PAYLOAD_BYTES = 8 * 1024
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="meshmart"'}


class Access(Enum):
    PUBLIC = "public"  # no identity needed
    USER = "user"  # any verified user
    OWNER = "owner"  # the verified user whose id is the path's {userId}


@dataclass(frozen=True)
class Principal:
    issuer: str
    subject: str


def encode_payload(claims: dict[str, object]) -> str:
    """base64url JSON without padding, as Envoy's forward_payload_header writes it. For callers
    without a sidecar (direct mode, tests) that must send what a sidecar would have set."""
    raw = json.dumps(claims, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def parse_payload(value: str) -> Principal:
    """The `iss` and `sub` of a base64url JSON payload; ValueError when it is anything else."""
    if len(value) > MAX_PAYLOAD_BYTES:
        raise ValueError("payload too large")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        claims = json.loads(raw)
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("payload is not base64url JSON") from exc
    if not isinstance(claims, dict):
        raise ValueError("payload is not a JSON object")
    issuer, subject = claims.get("iss"), claims.get("sub")
    if not isinstance(issuer, str) or not isinstance(subject, str) or not issuer or not subject:
        raise ValueError("payload lacks iss or sub")
    return Principal(issuer=issuer, subject=subject)


def request_principal(request: web.BaseRequest, trusted_issuer: str) -> Principal | None:
    """The verified caller, None without one; 401 for an identity that cannot be trusted."""
    values = request.headers.getall(PAYLOAD_HEADER, [])
    if not values:
        return None
    if len(values) > 1:  # one verified token gives one header; two means someone added one
        raise ProblemError(401, "ambiguous identity", headers=_CHALLENGE)
    try:
        principal = parse_payload(values[0])
    except ValueError:
        raise ProblemError(401, "unreadable identity", headers=_CHALLENGE) from None
    if principal.issuer != trusted_issuer:
        raise ProblemError(401, "token from an untrusted issuer", headers=_CHALLENGE)
    return principal


def authorize(request: web.Request, access: Access, trusted_issuer: str) -> Principal | None:
    """Enforce `access` for this request; returns the caller (None for PUBLIC without one)."""
    if access is Access.PUBLIC:
        return None
    principal = request_principal(request, trusted_issuer)
    if principal is None:
        raise ProblemError(401, "a bearer token is required", headers=_CHALLENGE)
    if access is Access.OWNER and principal.subject != request.match_info[OWNER_PARAMETER]:
        raise ProblemError(403, "this resource belongs to another user")
    return principal
