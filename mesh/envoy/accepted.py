"""Whether running Envoys took the files they were given: admin /stats, and their logs.

Envoy reports the version_info of every xDS file it accepted (`*.version_text`) and counts
every one it rejected (`listener_manager.lds.update_rejected`, `cluster_manager.cds...`,
`http.<prefix>.rds.<route>.update_rejected`); a rejected file leaves the last good config
serving and a "config update rejected: <why>" line in the log.
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesh.envoy.files import Versions
from mesh.runtime.polling import wait_until


@dataclass(frozen=True)
class LiveStatus:
    """From a running Envoy's /stats: the xDS versions it took, and its rejection counters."""

    versions: dict[str, str]  # "lds", "cds", or a route configuration's name -> version_info
    rejected: dict[str, int]  # counter name -> value

    @classmethod
    def of(cls, stats: list[dict[str, Any]]) -> LiveStatus:
        versions: dict[str, str] = {}
        rejected: dict[str, int] = {}
        for stat in stats:
            name, value = stat.get("name", ""), stat.get("value")
            if name.endswith(".update_rejected") and isinstance(value, int):
                rejected[name] = value
            elif name == "listener_manager.lds.version_text":
                versions["lds"] = str(value)
            elif name == "cluster_manager.cds.version_text":
                versions["cds"] = str(value)
            elif ".rds." in name and name.endswith(".version_text"):
                route = name.split(".rds.", 1)[1].removesuffix(".version_text")
                versions[route] = str(value)
        return cls(versions, rejected)

    def took(self, wanted: Versions) -> bool:
        expected = {"lds": wanted.lds, "cds": wanted.cds, **wanted.routes}
        return all(self.versions.get(name) == version for name, version in expected.items())

    def rejected_since(self, before: dict[str, int]) -> list[str]:
        return sorted(n for n, v in self.rejected.items() if v > before.get(n, 0))


def live_status(admin_port: int, timeout: float = 1.0) -> LiveStatus:
    query = "/stats?format=json&filter=(update_rejected|version_text)$"
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}{query}", timeout=timeout) as resp:
        return LiveStatus.of(json.loads(resp.read()).get("stats", []))


class NotTaken(Exception):
    """Some proxy did not take the files it was given."""


class Rejected(NotTaken):
    def __init__(self, proxy: str, counters: list[str]) -> None:
        super().__init__(f"{proxy} rejected the new config ({', '.join(counters)})")
        self.proxy, self.counters = proxy, counters


class Late(NotTaken):
    def __init__(self, proxies: list[str], timeout: float) -> None:
        waiting = ", ".join(proxies)
        super().__init__(f"Envoy did not take the new config within {timeout}s: {waiting}")
        self.proxies = proxies


def wait_taken(
    admin: dict[str, int],
    wanted: dict[str, Versions],
    timeout: float,
    rejected_before: dict[str, dict[str, int]],
    status: Callable[[int], LiveStatus] = live_status,
) -> None:
    """Until every proxy reports the versions wanted. A rise in a proxy's rejection counters
    (against `rejected_before`, where known) is a refusal at once, not after the timeout."""
    waiting = set(wanted)

    def all_taken() -> bool:
        for proxy in sorted(waiting):
            try:
                live = status(admin[proxy])
            except OSError:
                continue
            if proxy in rejected_before and (new := live.rejected_since(rejected_before[proxy])):
                raise Rejected(proxy, new)
            if live.took(wanted[proxy]):
                waiting.discard(proxy)
        return not waiting

    if not wait_until(all_taken, timeout, 0.02):
        raise Late(sorted(waiting), timeout)


def logged_rejections(log: Path, offset: int) -> list[str]:
    """What Envoy logged about the updates it rejected, after `offset` in its log."""
    reasons: dict[str, None] = {}
    with (
        contextlib.suppress(FileNotFoundError),
        log.open(encoding="utf-8", errors="replace") as text,
    ):
        text.seek(offset)
        for line in text:
            if "update rejected: " in line:
                reasons[line.split("update rejected: ", 1)[1].strip()] = None
    return list(reasons)
