"""The schemathesis hooks module for fuzzing through the ingress (SCHEMATHESIS_HOOKS): the
customer's token (fuzz_auth), and the few failures that are the edge's doing, not a service's.

Each exclusion drops one check's failure for one kind of answer that Envoy wrote itself, and
every other failure of that check still fails the run:

- ST204 (undeclared method must get 405): Envoy answers before any route or service sees the
  request: its HTTP codec refuses a method it does not know (QUERY) with 400, and the ingress
  AuthorizationPolicy admits only the listed methods of a public path, so any other is 403
  `RBAC: access denied`. Neither answer is the service's to make.
- ST203 (a missing Authorization header must get 401): the edge has nothing to verify, so
  jwt_authn lets the request on and the ingress AuthorizationPolicy, which admits a protected
  path only for a request principal, answers 403 `RBAC: access denied`, as Istio does.
- ST104 (a documented media type is missing): Envoy's own 400 (a path parameter it cannot
  carry, an encoded NUL) and 404 (the decoded path matches no ingress route) have an empty
  body and no Content-Type. OpenAPI has no media type for "no body", so the documents say it
  in the description (services/common/mesh_answers.py).
- ST101 (5xx): only the mesh's documented 5xx: Envoy's text/plain 503/504 and the services'
  503 "database unavailable" (e.g. while `make chaos` restarts PostgreSQL).
"""

from __future__ import annotations

import schemathesis
from schemathesis import Case, Response
from schemathesis.core.failures import Failure
from schemathesis.hooks import HookContext

import tests.support.fuzz_auth  # noqa: F401  (registers the auth provider and its hooks)

ENVOY_5XX_TEXTS = (b"upstream connect error", b"no healthy upstream", b"upstream request timeout")
DATABASE_UNAVAILABLE = b"the database is unavailable; try again"


def _header(response: Response, name: str) -> str | None:
    values = response.headers.get(name)
    return values[0] if values else None


def envoy_wrote_it(response: Response) -> bool:
    """The ingress answered itself: upstream answers carry x-envoy-upstream-service-time."""
    return (
        _header(response, "server") == "envoy"
        and _header(response, "x-envoy-upstream-service-time") is None
    )


def edge_answer(failure: Failure, response: Response) -> bool:
    """Whether `failure` is one of the documented edge answers above."""
    if failure.code == "ST204":
        return envoy_wrote_it(response) and response.status_code in (400, 403)
    if failure.code == "ST203":
        # A missing token is Istio's 403 (no principal for the ALLOW policy), not a 401.
        return envoy_wrote_it(response) and response.content == b"RBAC: access denied"
    if failure.code == "ST104":
        return (
            envoy_wrote_it(response) and response.status_code in (400, 404) and not response.content
        )
    if failure.code == "ST101":
        content_type = _header(response, "content-type") or ""
        if response.status_code in (503, 504) and content_type.startswith("text/plain"):
            return response.content.startswith(ENVOY_5XX_TEXTS)
        return response.status_code == 503 and DATABASE_UNAVAILABLE in response.content
    return False


@schemathesis.hook
def filter_failure(ctx: HookContext, failure: Failure, case: Case, response: Response) -> bool:
    return not edge_answer(failure, response)
