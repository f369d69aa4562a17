"""One source of truth: the manifests agree with the code, the Dockerfiles and istio/.

A renamed service, port, label, ServiceAccount, settings field, database or topic breaks a
test here instead of a pod in a cluster nobody here can start.
"""

from __future__ import annotations

import base64
import importlib
import inspect
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mesh.control.topology import LOADGEN
from mesh.control.workloads import SERVICES, ServiceSpec
from mesh.load.plan import SHOP, parse
from services.common.events import TOPIC_PARTITIONS
from services.common.settings import ServiceSettings
from tests.manifests.k8s import BASE, K8S, NAMESPACE, deployed, of_kind
from tests.manifests.test_istio_files import FILES, load
from tests.manifests.tools import REPO

IMAGE_UID = 10001
SHARED_FIELDS = set(ServiceSettings.model_fields)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return deployed(tmp_path_factory.mktemp("kind-workdir"))


def named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    return doc


def settings_class(spec: ServiceSpec) -> type[ServiceSettings]:
    module = importlib.import_module(f"{spec.package}.settings")
    (cls,) = [
        c for _, c in inspect.getmembers(module, inspect.isclass)
        if issubclass(c, ServiceSettings) and c is not ServiceSettings
    ]  # fmt: skip
    return cls


def service_deployments(docs: list[dict[str, Any]], spec: ServiceSpec) -> list[dict[str, Any]]:
    return [
        d for d in of_kind(docs, "Deployment")
        if d["spec"]["template"]["metadata"]["labels"].get("app") == spec.name
    ]  # fmt: skip


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return c


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_service_names_ports_labels_and_accounts(
    rendered: list[dict[str, Any]], spec: ServiceSpec
) -> None:
    assert (BASE / f"{spec.name}.yaml").is_file()
    service = named(rendered, "Service", spec.name)
    assert service["spec"]["selector"] == {"app": spec.name}
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http"}]
    named(rendered, "ServiceAccount", spec.name)
    deployments = service_deployments(rendered, spec)
    assert [
        d["metadata"]["name"] for d in deployments if d["metadata"]["labels"]["version"] == "v1"
    ] == [f"{spec.name}-v1"]
    for deployment in deployments:
        pod = deployment["spec"]["template"]
        version = pod["metadata"]["labels"]["version"]
        assert deployment["metadata"]["name"] == f"{spec.name}-{version}"
        assert deployment["spec"]["selector"]["matchLabels"] == {
            "app": spec.name,
            "version": version,
        }
        assert pod["spec"]["serviceAccountName"] == spec.name  # istio/ principals
        c = container(deployment)
        assert c["name"] == spec.name
        assert c["ports"] == [{"name": "http", "containerPort": 8080}]
        assert c["image"].split(":")[0] == f"meshmart/{spec.name}"
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["MESHMART_PORT"] == "8080"
        assert env["MESHMART_HOST"] == "0.0.0.0"  # noqa: S104 - the sidecar forwards to the pod IP
        assert env["MESHMART_SERVICE_VERSION"] == version
        assert c["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
        assert c["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
        dockerfile = REPO / "services" / spec.package.rsplit(".", 1)[1] / "Dockerfile"
        assert f'ENTRYPOINT ["python", "-m", "{spec.package}"]' in dockerfile.read_text()


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_env_names_are_settings_fields(rendered: list[dict[str, Any]], spec: ServiceSpec) -> None:
    fields = set(settings_class(spec).model_fields)
    for deployment in service_deployments(rendered, spec):
        names = [e["name"] for e in container(deployment)["env"]]
        unknown = [n for n in names if n.removeprefix("MESHMART_").lower() not in fields]
        assert not unknown and all(n.startswith("MESHMART_") for n in names), unknown
        # Every peer the service calls is configured, and names a real Service on 8080.
        peers = {f for f in fields - SHARED_FIELDS if f.endswith("_service_url")}
        env = {e["name"]: e.get("value") for e in container(deployment)["env"]}
        for peer in peers:
            host = peer.removesuffix("_url").replace("_", "-")
            assert env[f"MESHMART_{peer.upper()}"] == f"http://{host}:8080"
            named(rendered, "Service", host)


def _kubelet_env(
    deployment: dict[str, Any], docs: list[dict[str, Any]], root: Path
) -> dict[str, str]:
    """The env as the kubelet gives it: Secret refs resolved, volume files written under root."""
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts: dict[str, Path] = {}
    for mount in container(deployment)["volumeMounts"]:
        volume = volumes[mount["name"]]
        target = root / mount["mountPath"].lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        if "secret" in volume:
            data = named(docs, "Secret", volume["secret"]["secretName"])["data"]
            files = {k: base64.b64decode(v) for k, v in data.items()}
        elif "configMap" in volume:
            cm = named(docs, "ConfigMap", volume["configMap"]["name"])["data"]
            files = {k: v.encode() for k, v in cm.items()}
        else:
            continue
        for name, content in files.items():
            (target / name).write_bytes(content)
        mounts[mount["mountPath"]] = target
    env = {}
    for e in container(deployment)["env"]:
        if "valueFrom" in e:
            ref = e["valueFrom"]["secretKeyRef"]
            value = base64.b64decode(
                named(docs, "Secret", ref["name"])["data"][ref["key"]]
            ).decode()
        else:
            value = e["value"]
            for path, target in mounts.items():
                if value.startswith(path + "/"):
                    value = str(target) + value[len(path) :]
                    assert Path(value).is_file(), f"{e['name']}: nothing mounted at {e['value']}"
        env[e["name"]] = value
    return env


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_settings_load_from_the_deployed_env(
    rendered: list[dict[str, Any]],
    spec: ServiceSpec,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The service's settings class accepts exactly what the pod gets (production mode: real
    passwords required; {cipher} URL decrypted with the mounted key)."""
    cls = settings_class(spec)
    for deployment in service_deployments(rendered, spec):
        env = _kubelet_env(deployment, rendered, tmp_path / deployment["metadata"]["name"])
        for name in [n for n in __import__("os").environ if n.startswith("MESHMART_")]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = cls()
        assert settings.environment == "production" and settings.port == 8080
        assert settings.service_name == spec.name
        url = settings.database_url.get_secret_value()
        assert re.fullmatch(
            rf"postgresql://{spec.database}:[^@]+@postgres:5432/{spec.database}", url
        )
        if settings.kafka_bootstrap_servers:
            assert settings.kafka_bootstrap_servers == "kafka:9092"
        if settings.live_config_file:
            live = yaml.safe_load(settings.live_config_file.read_text())
            assert live == yaml.safe_load((REPO / "config" / f"{spec.name}.yaml").read_text())


def test_live_config_map_is_the_local_config_file(rendered: list[dict[str, Any]]) -> None:
    cm = named(rendered, "ConfigMap", "user-service-config")
    assert cm["data"] == {"user-service.yaml": (REPO / "config" / "user-service.yaml").read_text()}


def test_pods_are_hardened(rendered: list[dict[str, Any]]) -> None:
    dockerfiles = {
        (REPO / "services" / s.package.rsplit(".", 1)[1] / "Dockerfile").read_text()
        for s in SERVICES
    }
    assert all(f"USER {IMAGE_UID}:{IMAGE_UID}" in d for d in dockerfiles)
    ours = {s.name for s in SERVICES} | {LOADGEN}  # the in-mesh load generator has a sidecar
    for workload in [
        *of_kind(rendered, "Deployment"),
        *of_kind(rendered, "StatefulSet"),
        *of_kind(rendered, "Job"),
    ]:
        if workload["metadata"]["namespace"] != NAMESPACE:
            continue  # Istio's addons in istio-system, as Istio ships them
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 1337, name  # Istio's proxy UID
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {
                "drop": ["ALL"]
            }, name
            assert c["resources"]["limits"]["memory"], name
        app = pod["metadata"]["labels"]["app"]
        injected = pod["metadata"]["labels"].get("sidecar.istio.io/inject") != "false"
        assert injected == (app in ours), f"{name}: only the services and loadgen are in the mesh"
        if app in ours:
            assert spec["securityContext"]["runAsUser"] == IMAGE_UID
            (c,) = spec["containers"]
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            tmp = next(m for m in c["volumeMounts"] if m["mountPath"] == "/tmp")  # noqa: S108
            assert "emptyDir" in next(v for v in spec["volumes"] if v["name"] == tmp["name"])


def test_canary_differs_from_v1_only_in_version(rendered: list[dict[str, Any]]) -> None:
    v1 = named(rendered, "Deployment", "order-service-v1")
    v2 = named(rendered, "Deployment", "order-service-v2")
    text = (
        yaml.safe_dump(v2)
        .replace("order-service-v2", "order-service-v1")
        .replace("version: v2", "version: v1")
    )
    as_v1 = yaml.safe_load(text)
    for e in container(as_v1)["env"]:
        if e["name"] == "MESHMART_SERVICE_VERSION":
            assert e["value"] == "v2"
            e["value"] = "v1"
    assert as_v1 == v1


def test_databases_match_the_workloads(rendered: list[dict[str, Any]]) -> None:
    script = (K8S / "components" / "postgres" / "init-databases.sh").read_text()
    created = re.findall(r"^create (\w+) \"\$(\w+)\"$", script, re.MULTILINE)
    assert {db for db, _ in created} == {s.database for s in SERVICES}
    postgres = container(named(rendered, "StatefulSet", "postgres"))
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in postgres["env"] if "valueFrom" in e}
    for spec in SERVICES:
        (variable,) = [v for db, v in created if db == spec.database]
        assert (
            refs[variable]["name"].startswith(f"{spec.name}-database")
            and refs[variable]["key"] == "password"
        )
    assert named(rendered, "Service", "postgres")["spec"]["ports"][0]["port"] == 5432


def test_kafka_topics_and_version_match_local_mode(rendered: list[dict[str, Any]]) -> None:
    job = container(named(rendered, "Job", "kafka-topics"))
    created = dict(re.findall(r"^\s*create (\S+) (\d+)$", job["command"][-1], re.MULTILINE))
    assert {t: int(n) for t, n in created.items()} == TOPIC_PARTITIONS
    pom = (REPO / "mesh" / "infra" / "jars" / "kafka" / "pom.xml").read_text()
    local = re.search(r"<artifactId>kafka_2\.13</artifactId>\s*<version>([^<]+)</version>", pom)
    broker = named(rendered, "StatefulSet", "kafka")
    assert local and container(broker)["image"].endswith(f"apache/kafka:{local.group(1)}")
    assert job["image"] == container(broker)["image"]
    env = {e["name"]: e.get("value") for e in container(broker)["env"]}
    service = named(rendered, "Service", "kafka")
    assert (
        env["KAFKA_ADVERTISED_LISTENERS"]
        == f"PLAINTEXT://kafka-0.kafka.{NAMESPACE}.svc.cluster.local:9092"
    )
    assert broker["spec"]["serviceName"] == "kafka" and service["spec"]["clusterIP"] == "None"
    assert service["spec"]["ports"][0]["port"] == 9092


def test_istio_files_reference_what_the_manifests_deploy(rendered: list[dict[str, Any]]) -> None:
    services = {
        d["metadata"]["name"]
        for d in of_kind(rendered, "Service")
        if d["metadata"]["namespace"] == NAMESPACE
    }
    accounts = {d["metadata"]["name"] for d in of_kind(rendered, "ServiceAccount")}
    pod_labels = [
        d["spec"]["template"]["metadata"]["labels"] for d in of_kind(rendered, "Deployment")
    ]
    problems = []
    subsets = {
        (doc["spec"]["host"], subset["name"]): subset["labels"]
        for name in FILES for doc in load(name) if doc["kind"] == "DestinationRule"
        for subset in doc["spec"].get("subsets", [])
    }  # fmt: skip
    for name in FILES:
        for doc in load(name):
            where = f"{name}: {doc['kind']}/{doc['metadata']['name']}"
            spec = doc["spec"]
            if doc["metadata"].get("namespace", NAMESPACE) not in (NAMESPACE, "istio-system"):
                problems.append(f"{where}: namespace")
            hosts = [
                r["destination"]["host"] for h in spec.get("http", []) for r in h.get("route", [])
            ]
            hosts += [spec["host"]] if "host" in spec else []
            for route in (r for h in spec.get("http", []) for r in h.get("route", [])):
                dest = route["destination"]
                if "subset" in dest:  # a routed subset needs pods (a merely defined one not)
                    labels = {"app": dest["host"], **subsets[(dest["host"], dest["subset"])]}
                    if not any(labels.items() <= pod.items() for pod in pod_labels):
                        problems.append(f"{where}: no pod for {dest['host']} {dest['subset']}")
            problems += [
                f"{where}: no Service {h}" for h in hosts if h.split(".")[0] not in services
            ]
            selector = spec.get("selector", {}).get("matchLabels", {})
            if "app" in selector and not any(
                labels.get("app") == selector["app"] for labels in pod_labels
            ):
                problems.append(f"{where}: no pod labelled app={selector['app']}")
            for principal in re.findall(
                r"cluster\.local/ns/meshmart/sa/([\w-]+)", yaml.safe_dump(doc)
            ):
                if (
                    principal not in accounts and principal != "fortio"
                ):  # the fortio scenario's own load generator
                    problems.append(f"{where}: no ServiceAccount {principal}")
            for uri in re.findall(r"http://([\w.-]+):(\d+)/", yaml.safe_dump(doc)):
                host, port = uri
                if host.split(".")[0] not in services or port != "8080":
                    problems.append(f"{where}: {host}:{port} is not a meshmart Service")
    assert not problems, "\n".join(problems)


def test_loadgen_runs_the_shopper_in_the_mesh_as_local_mode_does(
    rendered: list[dict[str, Any]],
) -> None:
    """Its own ServiceAccount and labels, no Service selecting it, the loadgen image, and
    arguments mesh.load reads: every service the shopper calls, by its Service name."""
    deployment = named(rendered, "Deployment", LOADGEN)
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"] == {"app": LOADGEN, "version": "v1"}
    assert pod["spec"]["serviceAccountName"] == LOADGEN
    named(rendered, "ServiceAccount", LOADGEN)
    selectors = [d["spec"].get("selector", {}) for d in of_kind(rendered, "Service")]
    assert not [s for s in selectors if s.get("app") == LOADGEN], "a Service selects loadgen"
    c = container(deployment)
    assert c["image"].split(":")[0] == f"meshmart/{LOADGEN}" and "ports" not in c
    plan = parse(c["args"])
    (target,) = plan.targets
    assert target.via == "mesh" and plan.duration == 0
    services = {d["metadata"]["name"] for d in of_kind(rendered, "Service")}
    for service in SHOP:
        assert target.bases[service] == f"http://{service}:8080" and service in services
    dockerfile = (REPO / "mesh" / "load" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["python", "-m", "mesh.load"]' in dockerfile
