"""`meshmart openapi [--write|--check]`: each service's OpenAPI document, from its route table."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mesh.console import openapi as console_openapi
from mesh.paths import REPO_ROOT, SERVICES_DIR
from services.catalog.handlers import OPERATIONS as CATALOG
from services.common.operations import Operation, openapi_document
from services.order.handlers import OPERATIONS as ORDER
from services.user.handlers import OPERATIONS as USER

TABLES: dict[str, tuple[str, tuple[Operation, ...]]] = {
    "user": ("user-service", USER),
    "catalog": ("catalog-service", CATALOG),
    "order": ("order-service", ORDER),
}


def committed_path(package: str) -> Path:
    return SERVICES_DIR / package / "openapi.json"


def render(package: str) -> str:
    title, operations = TABLES[package]
    document: dict[str, Any] = openapi_document(title, "1.0.0", operations)
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "openapi", help="write or check services/*/openapi.json and the console's"
    )
    parser.add_argument("mode", choices=("write", "check"))
    parser.set_defaults(func=run)


def documents() -> dict[Path, str]:
    """Every committed OpenAPI document and what it should say: the services', the console's."""
    found = {committed_path(package): render(package) for package in TABLES}
    found[console_openapi.COMMITTED] = console_openapi.render()
    return found


def run(args: argparse.Namespace) -> int:
    stale = []
    for path, text in documents().items():
        if args.mode == "write":
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(REPO_ROOT)}")
        elif not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(str(path.relative_to(REPO_ROOT)))
    if stale:
        print(f"out of date: {', '.join(stale)}; run `meshmart openapi write`", file=sys.stderr)
        return 1
    return 0
