"""What clients get through the ingress that the service did not write: the mesh's own answers.

Envoy (the ingress and each sidecar) answers some requests itself, as text/plain: jwt_authn
refuses a token it cannot verify (401) before any policy runs, RBAC refuses what no
AuthorizationPolicy admits (403), and the router answers for an upstream it cannot reach (503)
or that is too slow (504). A path parameter is decoded by the edge's path normalisation
(DECODE_AND_MERGE_SLASHES), so an odd one can leave the operation's route (404) or reach the
service as a non-canonical path, which the service refuses (400). While PostgreSQL restarts,
database-backed operations answer 503 problem+json with Retry-After (services.common.errors).
Each service's OpenAPI document lists these next to its own answers, so a client (and the
fuzzing through the edge, tests/mesh/test_edge_fuzz.py) knows every answer it can get.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.common.errors import PROBLEM_JSON

TEXT_PLAIN = "text/plain"


@dataclass(frozen=True)
class Shape:
    """What decides which mesh answers an operation can get."""

    protected: bool  # needs a token at the edge (no token: RBAC)
    path_parameters: bool  # has {name} segments the edge decodes
    database: bool  # its handler reads or writes PostgreSQL


@dataclass(frozen=True)
class MeshAnswer:
    status: int
    media_type: str | None  # None: Envoy's empty body, with no Content-Type at all
    why: str
    example: str | None = None


def answers_for(shape: Shape) -> list[MeshAnswer]:
    found = [
        MeshAnswer(
            401,
            TEXT_PLAIN,
            "the edge's jwt_authn: a bearer token it cannot verify (malformed, expired, "
            "unknown key)",
            "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
        ),
        MeshAnswer(
            503,
            TEXT_PLAIN,
            "Envoy: no healthy upstream, or the connection to it failed or was reset",
            "upstream connect error or disconnect/reset before headers. reset reason: "
            "remote connection failure",
        ),
        MeshAnswer(
            504, TEXT_PLAIN, "Envoy: the route's timeout passed", "upstream request timeout"
        ),
    ]
    if shape.protected or shape.path_parameters:
        found.append(
            MeshAnswer(
                403,
                TEXT_PLAIN,
                "the edge's RBAC: no token, or a path that normalises outside the operations "
                "the AuthorizationPolicy admits without one",
                "RBAC: access denied",
            )
        )
    if shape.path_parameters:
        found += [
            MeshAnswer(
                400,
                PROBLEM_JSON,
                "a path parameter the edge decodes into a non-canonical path (a dot segment, "
                "an empty segment), which the service refuses",
            ),
            MeshAnswer(
                404,
                PROBLEM_JSON,
                "a path parameter the edge decodes into another path (a slash, a dot segment) "
                "that the service has no route for",
            ),
            MeshAnswer(
                400,
                None,
                "the edge refuses a path parameter it cannot carry (an encoded NUL)",
            ),
            MeshAnswer(404, None, "the edge: the decoded path matches no route"),
        ]
    if shape.database:
        found.append(
            MeshAnswer(
                503,
                PROBLEM_JSON,
                "the database is unavailable (e.g. PostgreSQL restarting); retry after "
                "Retry-After seconds",
            )
        )
    return found


def merged(
    responses: dict[str, dict[str, Any]], shape: Shape, problem_schema: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """An operation's `responses` with the mesh's answers next to the service's own."""
    responses = {status: {**entry} for status, entry in responses.items()}
    for entry in responses.values():
        if entry["description"] == "problem":  # the service's own, named next to the mesh's
            entry["description"] = "application/problem+json: the service"
    for answer in answers_for(shape):
        entry = responses.setdefault(str(answer.status), {"description": "", "content": {}})
        why = f"{answer.media_type or 'empty body'}: {answer.why}"
        entry["description"] = f"{entry['description']}; {why}" if entry["description"] else why
        if answer.media_type is None:
            continue  # OpenAPI has no media type for "no body": the description says it
        media: dict[str, Any] = {
            "schema": problem_schema if answer.media_type == PROBLEM_JSON else {"type": "string"}
        }
        if answer.example is not None:
            media["example"] = answer.example
        entry["content"] = {**entry.get("content", {})}
        entry["content"].setdefault(answer.media_type, media)
    return dict(sorted(responses.items()))
