"""The identity a sidecar hands an app, for tests that call an app without its sidecar.

In the mesh the sidecar verifies the caller's token and passes its payload in x-jwt-payload
(istio/request-authentication-services-jwt.yaml); an app tested on its own gets the same
header from the test, as its sidecar would have set it.
"""

from __future__ import annotations

from services.common.principal import PAYLOAD_HEADER, encode_payload

ISSUER = "meshmart-user-service"
FAR_FUTURE = 4102444800  # 2100-01-01: the sidecar already checked expiry


def as_user(user_id: str, issuer: str = ISSUER) -> dict[str, str]:
    """Request headers of a call made with a verified token of `user_id`."""
    return {PAYLOAD_HEADER: encode_payload({"iss": issuer, "sub": user_id, "exp": FAR_FUTURE})}
