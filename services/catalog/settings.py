from __future__ import annotations

from services.common.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    service_name: str = "catalog-service"
    port: int = 8102
