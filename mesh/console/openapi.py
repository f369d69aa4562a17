"""The console API's committed OpenAPI document (mesh/console/openapi.json)."""

from __future__ import annotations

import json
from pathlib import Path

from mesh.console.app import openapi_document

COMMITTED = Path(__file__).parent / "openapi.json"


def render() -> str:
    return json.dumps(openapi_document(), indent=2) + "\n"
