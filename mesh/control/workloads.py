"""The shop's workloads: one place that names each service, its database and its code."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from services.common.migrations import MigrationModule


@dataclass(frozen=True)
class ServiceSpec:
    """What the supervisor needs to know to start one service."""

    name: str  # the mesh name, also the ingress prefix: /<name>/...
    package: str  # python -m <package> runs it
    database: str  # its own PostgreSQL database
    default_port: int  # loopback port in direct (mesh-less) local mode

    @property
    def migrations(self) -> tuple[MigrationModule, ...]:
        """The service's schema modules, as its app applies them at start."""
        modules: tuple[MigrationModule, ...] = importlib.import_module(
            f"{self.package}.app"
        ).MIGRATIONS
        return modules


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("user-service", "services.user", "user_service", 8101),
    ServiceSpec("catalog-service", "services.catalog", "catalog_service", 8102),
    ServiceSpec("order-service", "services.order", "order_service", 8103),
)


def by_name(name: str) -> ServiceSpec:
    for spec in SERVICES:
        if spec.name == name or spec.name.removesuffix("-service") == name:
            return spec
    known = ", ".join(s.name for s in SERVICES)
    raise KeyError(f"unknown service {name!r}; known: {known}")
