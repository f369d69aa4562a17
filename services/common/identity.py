"""Who is calling: the caller's SPIFFE ID, as the sidecar reports it in x-forwarded-client-cert.

The sidecar terminates mTLS and (SANITIZE_SET) replaces whatever the client sent with the
verified peer certificate's URI SAN, so this header can be trusted when it arrives through
the sidecar — which, on a private unix socket, is the only way in.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

XFCC = "x-forwarded-client-cert"


def caller_identity(request: web.BaseRequest) -> str | None:
    """The URI of the last (nearest) element of XFCC, e.g. spiffe://cluster.local/ns/x/sa/y."""
    header = request.headers.get(XFCC)
    if not header:
        return None
    nearest = header.split(",")[-1]
    for part in nearest.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() == "uri":
            return value.strip().strip('"') or None
    return None


class AccessLogger(AbstractAccessLogger):
    """One structured line per request, including the verified caller identity."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status,
                "duration_ms": round(time * 1000, 1),
                "caller": caller_identity(request),
                "request_id": request.headers.get("x-request-id"),
            },
        )
