"""The committed openapi.json files are what the route tables generate, and the tables are
what the apps serve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import web
from starlette.routing import Route

from mesh.commands.openapi import TABLES, committed_path, render
from mesh.console import openapi as console_openapi
from mesh.console.app import create_app
from services.common.operations import add_routes


@pytest.mark.parametrize("package", sorted(TABLES))
def test_committed_document_is_current(package: str) -> None:
    assert committed_path(package).read_text(encoding="utf-8") == render(package), (
        "run `meshmart openapi write` and commit the result"
    )


@pytest.mark.parametrize("package", sorted(TABLES))
def test_document_lists_exactly_the_app_routes(package: str) -> None:
    _, operations = TABLES[package]
    app = web.Application()
    add_routes(app, operations, "meshmart-user-service")
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    document = json.loads(committed_path(package).read_text(encoding="utf-8"))
    documented = {
        (method.upper(), path) for path, methods in document["paths"].items() for method in methods
    }
    assert documented == served


def test_request_models_are_in_the_document() -> None:
    document = json.loads(committed_path("user").read_text(encoding="utf-8"))
    signup = document["components"]["schemas"]["SignupRequest"]
    assert signup["required"] == ["email", "name", "pwd"]
    assert signup["properties"]["pwd"]["minLength"] == 8
    order = json.loads(committed_path("order").read_text(encoding="utf-8"))
    assert order["components"]["schemas"]["OrderRequest"]["properties"]["qty"]["minimum"] == 1


def test_the_console_document_is_current_and_lists_exactly_its_api_routes(tmp_path: Path) -> None:
    assert console_openapi.COMMITTED.read_text(encoding="utf-8") == console_openapi.render(), (
        "run `meshmart openapi write` and commit the result"
    )
    app = create_app(tmp_path, tmp_path)
    served = {
        (method, route.path.replace(":path", ""))
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith("/api/") and route.methods
        for method in route.methods - {"HEAD"}
    }
    document = json.loads(console_openapi.COMMITTED.read_text(encoding="utf-8"))
    documented = {
        (method.upper(), path) for path, methods in document["paths"].items() for method in methods
    }
    assert documented == served - {("GET", "/api/openapi.json")}
    assert "securitySchemes" not in document["components"]  # nothing in it takes a token
