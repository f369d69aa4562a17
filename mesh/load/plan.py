"""What a load run is: its rate, shoppers and length, and where their requests go.

Locust's Environment takes one host; the shoppers need one base URL per service instead: the
ingress routes `/<service>/...` to each service and strips that prefix (the gateway
VirtualService, istio/gateway-meshmart.yaml), while a caller inside the mesh sends a service's
own paths to its sidecar's listener for that service, where the service's VirtualService
(weights, faults) applies. A `Target` is one such map; every request the shopper sends is an
absolute URL from it. Pure, with no Locust, so the CLI, the supervisor and the canary build a
`Plan` and the tests check the mapping without a shop.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass

# The services the shopper calls (mesh/load/shopper.py); istio/authorization-policy-loadgen.yaml
# admits the loadgen workload on exactly these.
SHOP = ("user-service", "catalog-service", "order-service")
VIAS = ("ingress", "mesh")


@dataclass(frozen=True)
class Target:
    """One way in: `via` "ingress" or "mesh"; `host` the ingress URL, or the first service's
    base URL (what Locust is given as the host: it prefixes nothing, every URL is absolute);
    `bases` each service's base URL, no trailing slash."""

    via: str
    host: str
    bases: Mapping[str, str]

    def url(self, service: str, path: str) -> str:
        return self.bases[service] + path

    def describe(self) -> str:
        return f"through the ingress {self.host}" if self.via == "ingress" else "from loadgen"


def through_ingress(url: str) -> Target:
    base = url.rstrip("/")
    return Target("ingress", base, {service: f"{base}/{service}" for service in SHOP})


def in_mesh(bases: Mapping[str, str]) -> Target:
    """Each service at its own base URL: the loadgen sidecar's outbound listener for it
    (local mode) or the service's name, which the pod's sidecar intercepts (cluster mode)."""
    missing = [service for service in SHOP if service not in bases]
    if missing:
        raise ValueError(f"no address for {', '.join(missing)} in the mesh")
    urls = {service: bases[service].rstrip("/") for service in SHOP}
    return Target("mesh", urls[SHOP[0]], urls)


def through_sidecar(outbound: Mapping[str, str]) -> Target:
    """From a sidecar's outbound listeners, {service host: "127.0.0.1:PORT"} as `meshmart run`
    records them in state.json."""
    return in_mesh({host.split(".")[0]: f"http://{address}" for host, address in outbound.items()})


@dataclass(frozen=True)
class Plan:
    targets: tuple[Target, ...]
    rps: float
    users: int
    duration: float  # seconds; 0 runs until SIGINT or SIGTERM

    def __post_init__(self) -> None:
        if not self.targets:
            raise ValueError("nowhere to send the load")
        if self.users < len(self.targets):
            raise ValueError(f"{len(self.targets)} ways in need at least as many shoppers")

    def shoppers(self) -> list[tuple[Target, int]]:
        """How many shoppers take each way in: an even split, the first taking the rest.
        Each shopper is paced at rps / users, so the rate splits the same way."""
        share, rest = divmod(self.users, len(self.targets))
        return [(t, share + (rest if i == 0 else 0)) for i, t in enumerate(self.targets)]

    def argv(self) -> list[str]:
        """The arguments of `python -m mesh.load` for this plan (`parse` reads them back)."""
        args = ["--rps", f"{self.rps:g}", "--users", str(self.users),
                "--duration", f"{self.duration:g}"]  # fmt: skip
        for target in self.targets:
            if target.via == "ingress":
                args += ["--ingress", target.host]
            else:
                args += [arg for s in SHOP for arg in ("--mesh", f"{s}={target.bases[s]}")]
        return args


def parse(argv: list[str]) -> Plan:
    """`python -m mesh.load`'s arguments; the cluster's loadgen Deployment writes them by hand.
    The ways in keep the order they are given in: the first takes the odd shopper."""
    parser = argparse.ArgumentParser(prog="python -m mesh.load")
    parser.add_argument("--rps", type=float, required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True)
    # Both append to one list, so their order survives parsing.
    parser.add_argument("--ingress", dest="ways", action="append", metavar="URL",
                        type=lambda url: ("ingress", url), help="through this ingress")  # fmt: skip
    parser.add_argument(
        "--mesh", dest="ways", action="append", metavar="SERVICE=URL",
        type=lambda item: ("mesh", item),
        help="from inside the mesh: each service the shopper calls, at its URL",
    )  # fmt: skip
    args = parser.parse_args(argv)
    ways: list[tuple[str, str]] = args.ways or []
    ingress = [url for via, url in ways if via == "ingress"]
    if len(ingress) > 1:
        parser.error("--ingress: one ingress at most")
    targets = {"ingress": through_ingress(ingress[0])} if ingress else {}
    if mesh := [item for via, item in ways if via == "mesh"]:
        try:
            targets["mesh"] = in_mesh(dict(item.partition("=")[::2] for item in mesh))
        except ValueError as exc:
            parser.error(f"--mesh: {exc}")
    try:
        ordered = tuple(targets[via] for via in dict.fromkeys(via for via, _ in ways))
        return Plan(ordered, args.rps, args.users, args.duration)
    except ValueError as exc:
        parser.error(str(exc))
