"""Health of an edge or node, with Kiali's default thresholds (kiali.io/docs/configuration/
health): 5xx degraded from 0.1 %, failure from 10 %; 4xx degraded from 10 %, failure from 20 %."""

from __future__ import annotations

from typing import Literal

Health = Literal["healthy", "degraded", "failure", "idle", "unknown"]
_ORDER: dict[Health, int] = {"idle": 0, "unknown": 1, "healthy": 2, "degraded": 3, "failure": 4}


def http_health(rate: float, server_error_percent: float, client_error_percent: float) -> Health:
    if rate <= 0:
        return "idle"
    if server_error_percent >= 10 or client_error_percent >= 20:
        return "failure"
    if server_error_percent >= 0.1 or client_error_percent >= 10:
        return "degraded"
    return "healthy"


def worst(*healths: Health) -> Health:
    return max(healths, key=_ORDER.__getitem__, default="idle")
