"""Where the shoppers' requests go: each service's base URL through the ingress or from the
loadgen sidecar, how the shoppers split between the two, and the load process's arguments."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from mesh.control.workloads import SERVICES
from mesh.load import load_command
from mesh.load.plan import (
    SHOP,
    Plan,
    Target,
    in_mesh,
    parse,
    through_ingress,
    through_sidecar,
)
from tests.manifests.test_istio_files import ingress_route

INGRESS = "http://127.0.0.1:8080"
OUTBOUND = {  # as `meshmart run` records the loadgen sidecar's listeners in state.json
    "user-service.meshmart.svc.cluster.local": "127.0.0.1:4101",
    "catalog-service.meshmart.svc.cluster.local": "127.0.0.1:4102",
    "order-service.meshmart.svc.cluster.local": "127.0.0.1:4103",
}
# Every path the shopper sends (mesh/load/shopper.py), as the service itself serves it.
PATHS = [
    ("user-service", "/users"),
    ("user-service", "/login"),
    ("user-service", "/users/u-1"),
    ("catalog-service", "/catalogs"),
    ("catalog-service", "/catalogs/CATALOG-001"),
    ("order-service", "/u-1/orders"),
]


def test_the_shopper_calls_services_of_the_shop() -> None:
    assert set(SHOP) <= {s.name for s in SERVICES}


@pytest.mark.parametrize(("service", "path"), PATHS)
def test_through_the_ingress_a_path_reaches_the_service_as_in_the_mesh(
    service: str, path: str
) -> None:
    """The ingress URL, through the gateway VirtualService's prefix match and rewrite, is the
    service's own path: what the loadgen sidecar's listener for it is sent."""
    url = urlsplit(through_ingress(INGRESS + "/").url(service, path))
    assert f"{url.scheme}://{url.netloc}" == INGRESS
    assert ingress_route(url.path) == (service, path)
    listener = OUTBOUND[f"{service}.meshmart.svc.cluster.local"]
    assert through_sidecar(OUTBOUND).url(service, path) == f"http://{listener}{path}"


def test_in_mesh_names_every_service_the_shopper_calls() -> None:
    with pytest.raises(ValueError, match="no address for order-service in the mesh"):
        in_mesh({"user-service": "http://u:8080", "catalog-service": "http://c:8080"})
    cluster = in_mesh({s: f"http://{s}:8080/" for s in SHOP})  # the cluster's service names
    assert cluster.url("order-service", "/u-1/orders") == "http://order-service:8080/u-1/orders"
    assert cluster.via == "mesh" and cluster.host == "http://user-service:8080"


@pytest.mark.parametrize(("users", "split"), [(5, [3, 2]), (4, [2, 2]), (2, [1, 1])])
def test_both_ways_split_the_shoppers_in_mesh_first(users: int, split: list[int]) -> None:
    plan = Plan((through_sidecar(OUTBOUND), through_ingress(INGRESS)), 10, users, 0)
    assert [(t.via, n) for t, n in plan.shoppers()] == list(
        zip(["mesh", "ingress"], split, strict=True)
    )


def test_every_way_in_needs_a_shopper() -> None:
    with pytest.raises(ValueError, match="2 ways in need at least as many shoppers"):
        Plan((through_sidecar(OUTBOUND), through_ingress(INGRESS)), 10, 1, 0)
    with pytest.raises(ValueError, match="nowhere"):
        Plan((), 10, 1, 0)


@pytest.mark.parametrize(
    "targets",
    [
        (through_ingress(INGRESS),),
        (through_sidecar(OUTBOUND),),
        (through_sidecar(OUTBOUND), through_ingress(INGRESS)),
    ],
    ids=["ingress", "mesh", "both"],
)
def test_the_load_process_reads_back_the_plan(targets: tuple[Target, ...]) -> None:
    plan = Plan(targets, 2.5, 5, 0)
    argv = load_command(plan)
    assert argv[1:3] == ["-m", "mesh.load"]
    assert parse(argv[3:]) == plan


def test_the_load_process_refuses_an_incomplete_mesh(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(["--rps", "1", "--users", "1", "--duration", "0",
               "--mesh", "user-service=http://u:8080"])  # fmt: skip
    assert "--mesh: no address for catalog-service, order-service" in capsys.readouterr().err
