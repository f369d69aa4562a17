"""The environment a service process gets from `meshmart run`, in either mode.

Only how the app listens and where its peers are differ between the mesh (a unix socket,
peers at its sidecar's outbound listeners) and direct mode (a loopback port, peers' ports).
"""

from __future__ import annotations

from pathlib import Path

from mesh.control.workloads import ServiceSpec
from mesh.infra.postgres import database_dsn
from mesh.paths import CONFIG_DIR, secrets_dir
from mesh.runtime.devsecrets import cipher_key, jwt_signing_key
from services.common import cipher


def _setting(service: str) -> str:
    """`order-service` -> the MESHMART_ORDER_SERVICE_URL setting its callers read."""
    return f"MESHMART_{service.upper().replace('-', '_')}_URL"


def app_env(
    spec: ServiceSpec,
    *,
    run_dir: Path,
    admin_dsn: str,
    kafka_bootstrap_servers: str,
    listen: dict[str, str],
    peers: dict[str, str],
    version: str = "v1",
    zipkin_endpoint: str | None = None,
) -> dict[str, str]:
    """`listen`: MESHMART_UNIX_SOCKET or MESHMART_PORT; `peers`: service name -> base URL."""
    key_file = cipher_key(secrets_dir(run_dir))
    key = key_file.read_text(encoding="utf-8").strip()
    env = {
        "MESHMART_ENVIRONMENT": "development",
        "MESHMART_SERVICE_VERSION": version,
        "MESHMART_CIPHER_KEY_FILE": str(key_file),
        # Stored encrypted, as a real deployment would: exercises {cipher} on every start.
        "MESHMART_DATABASE_URL": cipher.encrypt(database_dsn(admin_dsn, spec.database), key),
        "MESHMART_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "PYTHONUNBUFFERED": "1",
        **listen,
        **{_setting(service): url for service, url in peers.items()},
    }
    if zipkin_endpoint is not None:
        env["MESHMART_ZIPKIN_ENDPOINT"] = zipkin_endpoint
    if spec.name == "user-service":
        env["MESHMART_JWT_SIGNING_KEY_FILE"] = str(jwt_signing_key(secrets_dir(run_dir)))
        env["MESHMART_LIVE_CONFIG_FILE"] = str(CONFIG_DIR / "user-service.yaml")
    return env
