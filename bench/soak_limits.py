"""The soak's thresholds, each with the reason it is where it is (docs/reliability.md, "Soak")."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable

from bench.soak_judge import Limits
from mesh.control.workloads import by_name
from mesh.load import MIX
from services.catalog.settings import CatalogSettings
from services.common.settings import ServiceSettings
from services.order.settings import OrderSettings
from services.user.settings import UserSettings

# The figure: RSS within 10 % from the end of the warm-up to the end.
RSS_GROWTH = 0.10
# A process's sockets float with demand without leaking: its asyncpg pool holds 1 to 10
# connections (and closes one idle for 300 s), aiohttp and Envoy open keep-alive connections
# per burst. A leak at >= 100 requests/s gains hundreds over the run even at one per 100
# requests, so this slack hides no leak.
FD_SLACK = 16
TCP_SLACK = 12
# Ten seconds of the soak's orders. A consumer keeping up lags a message or two (orders settle
# in ~120 ms at p99 at 50 orders/s, docs/benchmarks.md); one that stalls crosses this within
# seconds, and even the saturated 200 orders/s benchmark settled within 2.7 s.
LAG_SECONDS = 10.0
MIN_LAG_BOUND = 50
SETTINGS: dict[str, type[ServiceSettings]] = {
    "user-service": UserSettings, "catalog-service": CatalogSettings,
    "order-service": OrderSettings,
}  # fmt: skip


def pool_max(service: str) -> int:
    """The service's asyncpg pool size: its settings' default unless the environment, which
    `meshmart run` hands the apps, sets MESHMART_DB_POOL_MAX."""
    default = SETTINGS[service].model_fields["db_pool_max"].default
    return int(os.environ.get("MESHMART_DB_POOL_MAX", default))


def pg_bounds(services: Iterable[str]) -> dict[str, int]:
    """database -> connections its pools may hold: one pool per app process (`services` has
    one entry per running replica)."""
    replicas = Counter(services)
    return {by_name(s).database: pool_max(s) * n for s, n in sorted(replicas.items())}


def lag_bound(rps: float) -> int:
    orders_per_second = rps * MIX["place order"] / sum(MIX.values())
    return max(MIN_LAG_BOUND, round(orders_per_second * LAG_SECONDS))


def limits(rps: float, services: Iterable[str], pg_shared_mib: float) -> Limits:
    return Limits(rss_growth=RSS_GROWTH, fd_slack=FD_SLACK, tcp_slack=TCP_SLACK,
                  max_lag=lag_bound(rps), pg_bounds=pg_bounds(services),
                  pg_shared_mib=pg_shared_mib)  # fmt: skip
