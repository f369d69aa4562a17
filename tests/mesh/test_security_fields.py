"""RequestAuthentication audiences and token locations, PeerAuthentication portLevelMtls, on
the running mesh: each changed live with `meshmart apply`, then put back.

The token checks run at order-service's sidecar, called through user-service's own outbound
listener (mTLS as user-service, which order-service admits): order-service answers a user's
orders only to a caller its sidecar verified as that user. The mesh is shared with the other
modules, so every test restores what it changed (`meshmart apply` cannot delete: the
baseline's file again, or the same-named resource selecting no workload).
"""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import aiohttp
import jwt
import yaml

from mesh.control.state import MeshState
from mesh.envoy.process import lds_version
from mesh.paths import ISTIO_DIR
from mesh.runtime.polling import wait_until
from services.user.tokens import ALGORITHM, TokenIssuer
from tests.mesh.conftest import Mesh
from tests.support.identity import ISSUER
from tests.support.shoppers import Customer
from tests.support.waiting import eventually

SERVICES_JWT = ISTIO_DIR / "request-authentication-services-jwt.yaml"
NOBODY = "security-fields-selects-no-workload"
ORDER_HOST = "order-service.meshmart.svc.cluster.local"


def _apply(mesh: Mesh, tmp_path: Path, document: str) -> None:
    """Apply `document`; return once every sidecar serves the listeners it was given."""
    path = tmp_path / f"{uuid.uuid4().hex[:8]}.yaml"
    path.write_text(document)
    applied = mesh.meshmart("apply", "-f", str(path))
    assert applied.returncode == 0, applied.stderr
    proxies = MeshState(mesh.run_dir).paths
    for name, workload in mesh.state["workloads"].items():
        lds = yaml.safe_load((proxies.proxy_dir(name) / "lds.yaml").read_text())
        admin_port = int(workload["sidecar_admin_url"].rsplit(":", 1)[1])
        assert wait_until(partial(_took, admin_port, lds["version_info"]), 30), name


def _took(admin_port: int, version: str) -> bool:
    return lds_version(admin_port) == version


def _services_jwt(**rule: object) -> str:
    """istio/request-authentication-services-jwt.yaml with more fields on its one rule."""
    (document,) = [d for d in yaml.safe_load_all(SERVICES_JWT.read_text()) if d]
    document["spec"]["jwtRules"][0].update(rule)
    return yaml.safe_dump(document)


def _token(mesh: Mesh, customer: Customer, audience: str | list[str]) -> str:
    """A token as user-service issues it (its key, kid, issuer), with an `aud` claim, which
    user-service's own tokens do not have."""
    pem = (mesh.run_dir / "secrets" / "jwt-signing-key.pem").read_bytes()
    now = datetime.now(UTC).replace(microsecond=0)
    claims = {"sub": customer.user_id, "iss": ISSUER, "aud": audience, "iat": now,
              "exp": now + timedelta(minutes=10)}  # fmt: skip
    kid = TokenIssuer(pem, ISSUER, 600).kid
    return jwt.encode(claims, pem, ALGORITHM, headers={"kid": kid})


Ask = Callable[..., Awaitable[tuple[int, str]]]


def _orders_as_user_service(mesh: Mesh, http: aiohttp.ClientSession, customer: Customer) -> Ask:
    """GET the customer's orders at order-service's sidecar, via user-service's sidecar."""
    to_orders = mesh.workload("user-service-v1-0")["outbound"][ORDER_HOST]
    url = f"http://{to_orders}/{customer.user_id}/orders"

    async def ask(query: str = "", **headers: str) -> tuple[int, str]:
        async with http.get(url + query, headers=headers) as resp:
            return resp.status, await resp.text()

    return ask


async def _until(ask: Ask, status: int, *args: str, **headers: str) -> None:
    """Right after an apply the sidecar may still be fetching the JWKS (its listener starts
    without waiting): poll until a request that should pass does."""

    async def answered() -> bool:
        return (await ask(*args, **headers))[0] == status

    await eventually(answered, 20)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_token_without_a_required_audience_is_forbidden(
    mesh: Mesh, http: aiohttp.ClientSession, customer: Customer, tmp_path: Path
) -> None:
    ask = _orders_as_user_service(mesh, http, customer)
    shop_token = customer.token  # no `aud` at all
    assert (await ask(**_bearer(shop_token)))[0] == 200
    try:
        _apply(mesh, tmp_path, _services_jwt(audiences=["meshmart-orders", "meshmart-shop"]))
        await _until(ask, 200, **_bearer(_token(mesh, customer, "meshmart-shop")))
        assert (await ask(**_bearer(_token(mesh, customer, ["x", "meshmart-orders"]))))[0] == 200
        # Envoy's jwt_authn answers a verified token with another audience 403, not 401
        # (JwtAudienceNotAllowed is its one Forbidden), in Istio as here.
        for token in (shop_token, _token(mesh, customer, "meshmart-partner")):
            status, body = await ask(**_bearer(token))
            assert (status, body) == (403, "Audiences in Jwt are not allowed"), body
    finally:
        _apply(mesh, tmp_path, SERVICES_JWT.read_text())
    await _until(ask, 200, **_bearer(shop_token))


async def test_a_token_in_a_custom_header_or_parameter_works_with_from_headers(
    mesh: Mesh, http: aiohttp.ClientSession, customer: Customer, tmp_path: Path
) -> None:
    ask = _orders_as_user_service(mesh, http, customer)
    token = customer.token
    header = {"x-meshmart-token": f"Token {token}"}
    status, body = await ask(**header)
    assert status == 401 and "a bearer token is required" in body  # the header means nothing
    try:
        _apply(mesh, tmp_path, _services_jwt(
            fromHeaders=[{"name": "x-meshmart-token", "prefix": "Token "}], fromParams=["token"],
        ))  # fmt: skip
        await _until(ask, 200, **header)
        assert (await ask(f"?token={token}"))[0] == 200
        # The sidecar verifies what it finds there...
        status, body = await ask(**{"x-meshmart-token": "Token not-a-jwt"})
        assert status == 401 and body.startswith("Jwt is not in the form"), body  # Envoy's
        # ...and no longer reads the default location: a valid bearer token gives no identity.
        status, body = await ask(**_bearer(token))
        assert status == 401 and "a bearer token is required" in body, body
    finally:
        _apply(mesh, tmp_path, SERVICES_JWT.read_text())
    await _until(ask, 200, **_bearer(token))


def _plaintext_get(mesh: Mesh, workload: str) -> int | None:
    """GET /catalogs without TLS; None when the sidecar takes no plaintext."""
    host, port = mesh.workload(workload)["sidecar_inbound"].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", "/catalogs", headers={"Host": "catalog-service"})
        response = conn.getresponse()
        response.read()
        return response.status
    except (http.client.HTTPException, OSError):
        return None
    finally:
        conn.close()


def _port_level(selector: str, port: int) -> str:
    return f"""\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: security-fields-port-mtls, namespace: meshmart}}
spec:
  selector: {{matchLabels: {{app: {selector}}}}}
  portLevelMtls:
    {port}: {{mode: PERMISSIVE}}
"""


def _open_catalogs(selector: str) -> str:
    """Lets a caller without an identity GET /catalogs, so a plaintext call can reach the app."""
    return f"""\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: security-fields-open-catalogs, namespace: meshmart}}
spec:
  selector: {{matchLabels: {{app: {selector}}}}}
  action: ALLOW
  rules:
    - to: [{{operation: {{methods: [GET], paths: [/catalogs]}}}}]
"""


def test_port_level_permissive_on_the_app_port_takes_plaintext_under_strict(
    mesh: Mesh, tmp_path: Path
) -> None:
    workload = "catalog-service-v1-0"
    try:
        _apply(mesh, tmp_path, _open_catalogs("catalog-service"))
        assert _plaintext_get(mesh, workload) is None  # the namespace's STRICT
        _apply(mesh, tmp_path, _port_level("catalog-service", 9090))
        assert _plaintext_get(mesh, workload) is None  # another port: no effect
        _apply(mesh, tmp_path, _port_level("catalog-service", 8080))
        assert _plaintext_get(mesh, workload) == 200  # the app answered, over plaintext
    finally:
        _apply(mesh, tmp_path, _port_level(NOBODY, 8080))
        _apply(mesh, tmp_path, _open_catalogs(NOBODY))
    assert _plaintext_get(mesh, workload) is None
