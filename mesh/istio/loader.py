"""Reading Istio YAML files into models, with errors that name the file, resource and field."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mesh.istio.models import (
    KINDS,
    AuthorizationPolicy,
    DestinationRule,
    Gateway,
    IstioResource,
    PeerAuthentication,
    RequestAuthentication,
    Resource,
    VirtualService,
)

ResourceKey = tuple[str, str, str]  # (kind, namespace, name), as MeshConfig keys resources
# How the translator's messages start: "VirtualService meshmart/order-service: spec.http[0]..."
_NAMES_RESOURCE = re.compile(r"^([A-Z][A-Za-z]+) ([a-z0-9.-]+)/([a-z0-9.-]+): ")


class IstioConfigError(ValueError):
    """A resource outside local mode's supported subset, or invalid.

    `file` is set when the message already names the file; `resource` is the resource the
    message is about (given, or read from a message that starts with "Kind namespace/name: "),
    so `meshmart apply` can name the file that resource came from.
    """

    def __init__(
        self, message: str, *, resource: ResourceKey | None = None, file: Path | None = None
    ) -> None:
        super().__init__(message)
        named = _NAMES_RESOURCE.match(message)
        self.resource = resource or ((named[1], named[2], named[3]) if named else None)
        self.file = file


def _describe(path: Path, index: int, doc: dict[str, Any]) -> str:
    meta = doc.get("metadata") or {}
    name = meta.get("name", f"document {index + 1}") if isinstance(meta, dict) else index
    return f"{path}: {doc.get('kind', '?')} {name}"


def _field_errors(exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"{where}: not supported in local mode")
        else:
            lines.append(f"{where}: {err['msg']}")
    return lines


def parse_documents(path: Path, text: str) -> list[IstioResource]:
    resources: list[IstioResource] = []
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise IstioConfigError(f"{path}: not valid YAML: {exc}", file=path) from None
    for index, doc in enumerate(documents):
        if not isinstance(doc, dict):
            raise IstioConfigError(f"{path}: document {index + 1} is not a mapping", file=path)
        where = _describe(path, index, doc)
        kind = doc.get("kind")
        if kind not in KINDS:
            supported = ", ".join(KINDS)
            raise IstioConfigError(
                f"{where}: kind {kind!r} not supported (supported: {supported})", file=path
            )
        versions, model = KINDS[kind]
        if doc.get("apiVersion") not in versions:
            raise IstioConfigError(
                f"{where}: apiVersion must be one of {', '.join(versions)}", file=path
            )
        try:
            resource: Any = model.model_validate(doc)
        except ValidationError as exc:
            message = f"{where}: " + "; ".join(_field_errors(exc))
            raise IstioConfigError(message, file=path) from None
        resources.append(resource)
    return resources


def load_file(path: Path) -> list[IstioResource]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise IstioConfigError(f"{path}: {exc.strerror}", file=path) from None
    return parse_documents(path, text)


@dataclass
class MeshConfig:
    """The applied Istio resources, keyed like the API server keys them."""

    resources: dict[tuple[str, str, str], IstioResource] = field(default_factory=dict)

    @staticmethod
    def key(resource: Resource) -> tuple[str, str, str]:
        return (resource.kind, resource.metadata.namespace, resource.metadata.name)

    def apply(self, resources: Iterable[IstioResource]) -> None:
        """Create or replace, like `kubectl apply`."""
        for resource in resources:
            self.resources[self.key(resource)] = resource

    def delete(self, resources: Iterable[IstioResource]) -> None:
        for resource in resources:
            self.resources.pop(self.key(resource), None)

    def of(self, kind: type[Any]) -> list[Any]:
        return [r for r in self.resources.values() if isinstance(r, kind)]

    @property
    def virtual_services(self) -> list[VirtualService]:
        return self.of(VirtualService)

    @property
    def destination_rules(self) -> list[DestinationRule]:
        return self.of(DestinationRule)

    @property
    def gateways(self) -> list[Gateway]:
        return self.of(Gateway)

    @property
    def peer_authentications(self) -> list[PeerAuthentication]:
        return self.of(PeerAuthentication)

    @property
    def request_authentications(self) -> list[RequestAuthentication]:
        return self.of(RequestAuthentication)

    @property
    def authorization_policies(self) -> list[AuthorizationPolicy]:
        return self.of(AuthorizationPolicy)
