"""`meshmart apply` without a running mesh: refusals name the file, and change nothing.

A run directory is laid out as `meshmart run` lays it out (topology, certificates, every proxy's
files from the istio/ baseline). Envoy's validate mode is the real binary (a few hundred ms);
the live Envoys are a fake that reports the versions of the files on disk, so a rejection or a
proxy that never takes its files can be staged.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mesh.control.ca import LocalCA
from mesh.control.state import (
    DEFAULT_FILES,
    EnvoyCheck,
    MeshState,
    apply_files,
    read_documents,
    render,
    wait_applied,
)
from mesh.control.topology import build_topology
from mesh.envoy.accepted import LiveStatus
from mesh.envoy.files import read_proxy, versions
from mesh.envoy.translate import ProxyConfig
from mesh.envoy.validate import validation_bootstrap
from mesh.istio.loader import IstioConfigError
from mesh.paths import ISTIO_DIR

SERVICES = ("user-service", "catalog-service", "order-service")
REJECTED = "listener_manager.lds.update_rejected"


def vs(http: str, name: str = "order-service") -> str:
    return (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
        f"metadata: {{name: {name}, namespace: meshmart}}\n"
        f"spec:\n  hosts: [order-service]\n  http:\n{http}"
    )


# A regex istio's validation (and the models) accept but Envoy refuses: valid RE2 of 375
# characters whose compiled program (34005) is over the 32768 pilot-agent allows.
BIG_PROGRAM = "/" + "[a-z]{1000}" * 34
TOO_BIG = vs(
    f'  - match: [{{uri: {{regex: "{BIG_PROGRAM}"}}}}]\n'
    "    route: [{destination: {host: order-service, subset: v2}}]\n"
    "  - route: [{destination: {host: order-service, subset: v1}}]\n"
)
TO_V2 = vs("  - route: [{destination: {host: order-service, subset: v2}}]\n")


@pytest.fixture
def state(tmp_path: Path) -> MeshState:
    return laid_out(tmp_path)


def laid_out(tmp_path: Path) -> MeshState:
    """A run directory as `meshmart run` leaves it, without any process."""
    state = MeshState(tmp_path / "run")
    topology = build_topology(
        {("user-service", "v1"): 1, ("catalog-service", "v1"): 1, ("order-service", "v1"): 1,
         ("order-service", "v2"): 1},
        SERVICES, tmp_path / "sockets", zipkin_port=9411,
    )  # fmt: skip
    state.save_topology(topology)
    ca = LocalCA.load_or_create(state.root / "ca")
    for proxy in topology.proxies:
        ca.issue_workload(proxy.namespace, proxy.service_account, state.certs.directory)
    documents = {}
    for name in DEFAULT_FILES:
        for doc in read_documents(ISTIO_DIR / name):
            documents[f"{doc['kind']}/{doc['metadata']['namespace']}/{doc['metadata']['name']}"] = (
                doc
            )
    render(state, documents)
    state.save_documents(documents)
    return state


def snapshot(state: MeshState) -> dict[str, bytes]:
    """Every file Envoy or `meshmart apply` reads, byte for byte."""
    return {
        str(p.relative_to(state.root)): p.read_bytes()
        for p in sorted(state.root.rglob("*.yaml")) + sorted(state.root.glob("*.json"))
    }


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def disk_envoy(
    state: MeshState, rejecting: str | None = None, frozen: dict[str, ProxyConfig] | None = None
) -> Callable[[int], LiveStatus]:
    """Fake live Envoys: each reports the versions of its files on disk (or of `frozen` ones);
    `rejecting` counts a rejection while its files differ from what it started with."""
    topology = state.topology()
    by_port = {p.admin_port: p.name for p in topology.proxies}
    started = {p.name: read_proxy(state.paths, p.name) for p in topology.proxies}

    def status(port: int) -> LiveStatus:
        proxy = by_port[port]
        on_disk = read_proxy(state.paths, proxy)
        taken = versions(frozen[proxy] if frozen else on_disk)
        rejected = int(proxy == rejecting and on_disk != started[proxy])
        return LiveStatus(
            {"lds": taken.lds, "cds": taken.cds, **taken.routes}, {REJECTED: rejected}
        )

    return status


def test_translator_refusal_names_the_file_resource_and_field(
    state: MeshState, tmp_path: Path
) -> None:
    bad = write(
        tmp_path,
        "vs-v3.yaml",
        vs("  - route: [{destination: {host: order-service, subset: v3}}]\n"),
    )
    before = snapshot(state)
    with pytest.raises(IstioConfigError) as refused:
        apply_files(state, [bad])
    assert str(refused.value).startswith(
        f"{bad}: VirtualService meshmart/order-service: spec.http[0].route[0].destination.subset:"
    )
    assert snapshot(state) == before


def test_refusal_of_an_earlier_resource_names_its_file_and_the_one_applied(
    state: MeshState, tmp_path: Path
) -> None:
    canary = ISTIO_DIR / "virtual-service-order-90-10.yaml"
    wait_applied(state, apply_files(state, [canary]), status=disk_envoy(state))
    only_v1 = write(
        tmp_path, "dr-order-v1-only.yaml",
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
        "metadata: {name: order-service, namespace: meshmart}\n"
        "spec:\n  host: order-service\n  subsets: [{name: v1, labels: {version: v1}}]\n",
    )  # fmt: skip
    with pytest.raises(IstioConfigError) as refused:
        apply_files(state, [only_v1])
    message = str(refused.value)
    assert message.startswith("istio/virtual-service-order-90-10.yaml: VirtualService meshmart/")
    assert "spec.http[0].route[1].destination.subset" in message
    assert message.endswith(f"(refused while applying {only_v1})")


def test_a_baseline_resource_is_named_by_its_istio_file(state: MeshState, tmp_path: Path) -> None:
    no_subsets = write(
        tmp_path, "dr-order-none.yaml",
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
        "metadata: {name: order-service, namespace: meshmart}\nspec:\n  host: order-service\n",
    )  # fmt: skip
    with pytest.raises(IstioConfigError, match=r"^istio/virtual-service-all-v1\.yaml: Virtual"):
        apply_files(state, [no_subsets])


def test_envoy_refusal_names_file_resource_proxy_and_reason_and_writes_nothing(
    state: MeshState, tmp_path: Path
) -> None:
    bad = write(tmp_path, "vs-too-big.yaml", TOO_BIG)
    before = snapshot(state)
    with pytest.raises(IstioConfigError) as refused:
        apply_files(state, [bad])
    message = str(refused.value)
    assert message.startswith(f"{bad}: VirtualService meshmart/order-service: Envoy refused")
    assert "user-service-v1-0" in message and "program size" in message
    assert "istio-ingressgateway" not in message  # its routes do not change
    assert snapshot(state) == before


def test_of_several_changed_resources_the_one_envoy_refuses_is_named(
    state: MeshState, tmp_path: Path
) -> None:
    catalog = vs(
        "  - route: [{destination: {host: catalog-service, subset: v1}}]\n", "catalog-service"
    )
    catalog = catalog.replace("hosts: [order-service]", "hosts: [catalog-service]")
    both = write(tmp_path, "two.yaml", f"{catalog}---\n{TOO_BIG}")
    with pytest.raises(IstioConfigError) as refused:
        apply_files(state, [both])
    assert str(refused.value).startswith(f"{both}: VirtualService meshmart/order-service: Envoy")


def test_envoy_validates_strictly_with_every_route_inline(state: MeshState) -> None:
    topology = state.topology()
    proxy = topology.workloads[0].name
    config = read_proxy(state.paths, proxy)
    envoy = EnvoyCheck(state, topology)
    assert envoy.refusals({proxy: config}) == {}
    unknown_field = {**config.clusters[0], "bogus_field": 1}
    broken = ProxyConfig(config.listeners, [unknown_field, *config.clusters[1:]], config.routes)
    (said,) = envoy.refusals({proxy: broken}).values()
    assert "bogus_field" in said  # as `--reject-unknown-dynamic-fields` makes the live one say
    static = validation_bootstrap(envoy.bootstraps[proxy], config)
    assert "dynamic_resources" not in static and "admin" not in static
    outbound = static["static_resources"]["listeners"][1]
    hcm = outbound["filter_chains"][0]["filters"][0]["typed_config"]
    assert "@type" not in outbound and "rds" not in hcm
    assert hcm["route_config"]["name"].startswith("outbound|8080||")


def test_one_envoy_validates_every_proxy_and_a_refusal_names_only_its_proxy(
    state: MeshState,
) -> None:
    topology = state.topology()
    envoy = EnvoyCheck(state, topology)
    configs = {p.name: read_proxy(state.paths, p.name) for p in topology.proxies}
    assert envoy.refusals(configs) == {}  # all of them in one Envoy, names made unique
    ingress = configs[topology.ingress.name]
    negative = {**ingress.clusters[0], "connect_timeout": "-1s"}
    configs[topology.ingress.name] = ProxyConfig(
        ingress.listeners, [negative, *ingress.clusters[1:]], ingress.routes
    )
    refused = envoy.refusals(configs)
    assert list(refused) == [topology.ingress.name]
    assert "duration" in refused[topology.ingress.name].lower()


def test_a_rejection_after_the_swap_restores_every_proxy_and_saves_nothing(
    state: MeshState, tmp_path: Path
) -> None:
    before = snapshot(state)
    envoys = disk_envoy(state, rejecting="user-service-v1-0")
    pending = apply_files(state, [write(tmp_path, "v2.yaml", TO_V2)])
    assert snapshot(state) != before  # swapped
    pending.rejected = {proxy: {REJECTED: 0} for proxy in pending.versions}
    log = state.envoy_log(state.topology(), "user-service-v1-0")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("[warning][config] Filesystem config update rejected: no such thing\n")
    with pytest.raises(IstioConfigError) as refused:
        wait_applied(state, pending, status=envoys)
    message = str(refused.value)
    assert message.startswith(
        f"{tmp_path / 'v2.yaml'}: VirtualService meshmart/order-service: "
        "user-service-v1-0 rejected the new config"
    )
    assert f"({REJECTED}): no such thing" in message
    assert message.endswith("every proxy is back on its previous config and nothing was applied")
    assert snapshot(state) == before


def test_a_proxy_that_never_takes_the_new_files_is_rolled_back(
    state: MeshState, tmp_path: Path
) -> None:
    topology = state.topology()
    frozen = {p.name: read_proxy(state.paths, p.name) for p in topology.proxies}
    before = snapshot(state)
    pending = apply_files(state, [write(tmp_path, "v2.yaml", TO_V2)])
    with pytest.raises(IstioConfigError, match=r"did not take the new config within 0.2s"):
        wait_applied(state, pending, timeout=0.2, status=disk_envoy(state, frozen=frozen))
    assert snapshot(state) == before


def test_an_interrupted_wait_rolls_back_too(state: MeshState, tmp_path: Path) -> None:
    before = snapshot(state)
    pending = apply_files(state, [write(tmp_path, "v2.yaml", TO_V2)])
    calls = 0
    honest = disk_envoy(state)

    def interrupted(port: int) -> LiveStatus:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KeyboardInterrupt
        return honest(port)

    with pytest.raises(KeyboardInterrupt):
        wait_applied(state, pending, status=interrupted)
    assert snapshot(state) == before


def test_a_taken_apply_is_saved_with_its_file(state: MeshState, tmp_path: Path) -> None:
    path = write(tmp_path, "v2.yaml", TO_V2)
    wait_applied(state, apply_files(state, [path]), status=disk_envoy(state))
    assert (
        state.applied_documents()["VirtualService/meshmart/order-service"]["spec"]["http"][0][
            "route"
        ][0]["destination"]["subset"]
        == "v2"
    )
    assert state.sources()["VirtualService/meshmart/order-service"] == path.resolve()
    assert state.sources()["Gateway/meshmart/meshmart-gateway"] == (
        ISTIO_DIR / "gateway-meshmart.yaml"
    )


def test_live_status_reads_envoys_stat_names() -> None:
    live = LiveStatus.of([
        {"name": "listener_manager.lds.version_text", "value": "l1"},
        {"name": "cluster_manager.cds.version_text", "value": "c1"},
        {"name": "http.gateway_8080.rds.http.8080.version_text", "value": "r1"},
        {"name": "http.outbound_order-service.rds.outbound|8080||order-service.meshmart.svc"
                 ".cluster.local.update_rejected", "value": 2},
        {"name": "cluster_manager.cds.update_rejected", "value": 0},
    ])  # fmt: skip
    assert live.versions == {"lds": "l1", "cds": "c1", "http.8080": "r1"}
    assert live.rejected_since({"cluster_manager.cds.update_rejected": 0}) == [
        "http.outbound_order-service.rds.outbound|8080||order-service.meshmart.svc.cluster.local"
        ".update_rejected"
    ]


def test_a_second_virtual_service_for_a_host_names_its_file_and_the_first(
    state: MeshState, tmp_path: Path
) -> None:
    second = write(tmp_path, "second-vs.yaml", TO_V2.replace("name: order-service,", "name: x,"))
    with pytest.raises(IstioConfigError, match=rf"^{second}: VirtualService meshmart/x: ") as e:
        apply_files(state, [second])
    assert "also defined by VirtualService meshmart/order-service" in str(e.value)


def test_meshmart_run_records_the_baseline_files_whatever_an_earlier_run_applied(
    state: MeshState, tmp_path: Path
) -> None:
    path = write(tmp_path, "v2.yaml", TO_V2)
    wait_applied(state, apply_files(state, [path]), status=disk_envoy(state))
    state.save_documents(state.applied_documents())  # as `meshmart run` saves the baseline
    assert state.sources()["VirtualService/meshmart/order-service"] == (
        ISTIO_DIR / "virtual-service-all-v1.yaml"
    )
