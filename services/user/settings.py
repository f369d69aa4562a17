from __future__ import annotations

from pathlib import Path

from aiohttp import web
from pydantic import Field, SecretStr, model_validator

from services.common.settings import ServiceSettings


class UserSettings(ServiceSettings):
    service_name: str = "user-service"
    port: int = 8101
    # PEM of the EC P-256 key that signs tokens: inline (may be {cipher}-encrypted) or a file
    # (a Secret mount). Never in the repo; `meshmart run` generates one for development.
    jwt_signing_key: SecretStr | None = None
    jwt_signing_key_file: Path | None = None
    token_ttl_seconds: int = Field(default=3600, gt=0)
    order_service_url: str = "http://127.0.0.1:8103"
    # Shorter than the mesh route timeout: the user comes back degraded before Envoy gives up.
    orders_timeout_seconds: float = Field(default=1.0, gt=0)
    greeting: str = "Welcome to meshmart"

    @model_validator(mode="after")
    def _one_signing_key(self) -> UserSettings:
        if (self.jwt_signing_key is None) == (self.jwt_signing_key_file is None):
            raise ValueError(
                "set exactly one of MESHMART_JWT_SIGNING_KEY or MESHMART_JWT_SIGNING_KEY_FILE"
            )
        return self

    def signing_key_pem(self) -> bytes:
        if self.jwt_signing_key is not None:
            return self.jwt_signing_key.get_secret_value().encode("ascii")
        assert self.jwt_signing_key_file is not None
        return self.jwt_signing_key_file.read_bytes()


USER_SETTINGS = web.AppKey("user_settings", UserSettings)
