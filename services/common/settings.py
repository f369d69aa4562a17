"""Settings shared by every service: pydantic-settings, env vars `MESHMART_*` win over defaults.

Values written as `{cipher}...` are decrypted before validation with the key from
`MESHMART_CIPHER_KEY` (or the file named by `MESHMART_CIPHER_KEY_FILE`, a Secret mount).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common import cipher

# Secrets that ship in examples and tutorials; refused outside development.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "password", "postgres"})


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MESHMART_", extra="ignore", frozen=True)

    environment: Literal["development", "test", "production"] = "development"
    service_name: str = "meshmart"
    service_version: str = "v1"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # In the local mesh the app listens only on this unix socket, which only its sidecar
    # (and the supervisor's readiness probe) uses: the app is reachable through the mesh only.
    unix_socket: Path | None = None
    # A listening socket inherited from the parent (socket activation, like systemd's
    # LISTEN_FDS): several processes can serve one socket, the kernel spreading connections.
    listen_fd: int | None = Field(default=None, ge=0)
    database_url: SecretStr = SecretStr("postgresql://meshmart@127.0.0.1:5432/meshmart")
    db_pool_min: int = Field(default=1, ge=0)
    db_pool_max: int = Field(default=10, ge=1)
    # Non-secret live config (a ConfigMap file in cluster mode); watched and re-read on change.
    live_config_file: Path | None = None
    log_level: str = "INFO"
    zipkin_endpoint: str | None = None  # e.g. http://127.0.0.1:9411/api/v2/spans
    # Share of requests traced when no caller decided (in the mesh the edge proxy decides and
    # the app follows; Istio's default is 1 %, its demo profile 100 %).
    trace_sampling_percent: float = Field(default=100.0, ge=0, le=100)
    # Server options, chosen from measurements (docs/benchmarks.md, "Server options").
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    access_log: bool = True
    # host:port[,host:port]; unset: no Kafka (events wait in the outbox until it is set).
    kafka_bootstrap_servers: str | None = None
    # The issuer whose tokens the mesh verifies (user-service signs them); a verified payload
    # from any other issuer is not an identity here.
    jwt_issuer: str = "meshmart-user-service"
    shutdown_timeout_seconds: float = Field(default=10.0, gt=0)
    # POST /test/fault on the app socket makes this replica fail (fault-injection suite only).
    test_endpoints: bool = False
    cipher_key: SecretStr | None = None
    cipher_key_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _decrypt_cipher_values(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        encrypted = [k for k, v in data.items() if isinstance(v, str) and cipher.is_encrypted(v)]
        if not encrypted:
            return data
        key = _cipher_key(data)
        if key is None:
            raise ValueError(
                f"{', '.join(sorted(encrypted))}: value is {cipher.PREFIX}-encrypted but neither "
                "MESHMART_CIPHER_KEY nor MESHMART_CIPHER_KEY_FILE is set"
            )
        decrypted = dict(data)
        for name in encrypted:
            try:
                decrypted[name] = cipher.decrypt(data[name], key)
            except cipher.CipherError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return decrypted

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> ServiceSettings:
        if self.environment == "production" and self.test_endpoints:
            raise ValueError("test_endpoints: never in production")
        if self.environment == "development":
            return self
        password = _dsn_password(self.database_url.get_secret_value())
        if password is None or password.lower() in PLACEHOLDER_SECRETS:
            raise ValueError(
                "database_url: a real password is required outside development "
                f"(environment={self.environment})"
            )
        return self


def _cipher_key(data: dict[str, Any]) -> str | None:
    key = data.get("cipher_key")
    if isinstance(key, SecretStr):
        return key.get_secret_value()
    if isinstance(key, str) and key:
        return key
    key_file = data.get("cipher_key_file")
    if key_file:
        return Path(key_file).read_text(encoding="utf-8").strip()
    return None


def _dsn_password(dsn: str) -> str | None:
    return urlsplit(dsn).password
