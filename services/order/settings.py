from __future__ import annotations

from aiohttp import web
from pydantic import Field

from services.common.settings import ServiceSettings


class OrderSettings(ServiceSettings):
    service_name: str = "order-service"
    port: int = 8103
    # In mesh mode this is the sidecar's outbound listener for catalog-service.
    catalog_service_url: str = "http://127.0.0.1:8102"
    # Shorter than the mesh route timeout, so the app answers before Envoy gives up.
    catalog_timeout_seconds: float = Field(default=2.0, gt=0)


ORDER_SETTINGS = web.AppKey("order_settings", OrderSettings)
