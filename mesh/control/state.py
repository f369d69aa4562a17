"""The local control plane's state: applied Istio resources and the topology, on disk.

`meshmart run` writes them; `meshmart apply` (another process) reads them, applies a file the
way `kubectl apply` would, re-translates, has Envoy validate the result and swaps the Envoy
files; Envoy does the rest. An apply the translator or Envoy refuses changes nothing: no file
is written, or every proxy's previous files are put back, and applied.yaml stays as it was.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from mesh.control.topology import Client, Ingress, Topology, Workload
from mesh.envoy.accepted import (
    Late,
    LiveStatus,
    NotTaken,
    Rejected,
    live_status,
    logged_rejections,
    wait_taken,
)
from mesh.envoy.common import CertPaths
from mesh.envoy.files import Versions, bootstrap_document, read_proxy, write_proxy
from mesh.envoy.translate import Paths, ProxyConfig, translate
from mesh.envoy.validate import refusals
from mesh.istio.loader import IstioConfigError, MeshConfig, parse_documents
from mesh.paths import ISTIO_DIR

# What `meshmart run` applies at start: the mesh's baseline (see istio/README.md).
DEFAULT_FILES = (
    "gateway-meshmart.yaml",
    "destination-rule-all-mtls.yaml",
    "peer-authentication-mesh-strict.yaml",
    "request-authentication-ingress-jwt.yaml",
    "request-authentication-services-jwt.yaml",
    "authorization-policy-ingress-jwt.yaml",
    "authorization-policy-services.yaml",
    "authorization-policy-loadgen.yaml",
    "virtual-service-all-v1.yaml",
)

Documents = dict[str, dict[str, Any]]  # "Kind/namespace/name" -> the document as written


class MeshState:
    def __init__(self, run_dir: Path) -> None:
        self.root = run_dir.resolve() / "mesh"
        self.paths = Paths(self.root / "proxies")
        self.certs = CertPaths(self.root / "certs", self.root / "ca" / "root-cert.pem")

    # --- applied resources: raw documents, so they round-trip exactly as written ----------

    def _applied_file(self) -> Path:
        return self.root / "applied.yaml"

    def _sources_file(self) -> Path:
        """Which file each applied document came from, next to (not inside) the documents."""
        return self.root / "applied-sources.json"

    def applied_documents(self) -> Documents:
        try:
            docs = list(yaml.safe_load_all(self._applied_file().read_text(encoding="utf-8")))
        except FileNotFoundError:
            return {}
        return {_key(d): d for d in docs if d}

    def sources(self) -> dict[str, Path]:
        """The file each applied document came from (the baseline's from istio/, if unsaved)."""
        try:
            saved = json.loads(self._sources_file().read_text(encoding="utf-8"))
        except FileNotFoundError:
            saved = {}
        return {**_baseline_sources(), **{key: Path(path) for key, path in saved.items()}}

    def config(
        self, documents: Documents | None = None, sources: dict[str, Path] | None = None
    ) -> MeshConfig:
        """The documents as models; an invalid one is named by the file it came from."""
        docs = self.applied_documents() if documents is None else documents
        origin = self.sources() if sources is None else sources
        config = MeshConfig()
        for key, doc in docs.items():
            where = shown(origin.get(key, self._applied_file()))
            config.apply(parse_documents(where, yaml.safe_dump(doc, sort_keys=False)))
        return config

    def save_documents(self, documents: Documents, sources: dict[str, Path] | None = None) -> None:
        """Without `sources` (`meshmart run`), the documents are the baseline from istio/."""
        self.root.mkdir(parents=True, exist_ok=True)
        origin = _baseline_sources() if sources is None else sources
        known = {key: str(origin[key]) for key in documents if key in origin}
        _replace(self._sources_file(), json.dumps(known, indent=2))
        text = yaml.safe_dump_all(list(documents.values()), sort_keys=False)
        _replace(self._applied_file(), text)

    # --- topology ----------------------------------------------------------------------

    def save_topology(self, topology: Topology) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "topology.json").write_text(
            json.dumps(asdict(topology), default=str, indent=2)
        )

    def topology(self) -> Topology:
        try:
            raw = json.loads((self.root / "topology.json").read_text())
        except FileNotFoundError:
            raise IstioConfigError(f"no local mesh running from {self.root.parent}") from None
        workloads = tuple(
            Workload(**{**w, "app_socket": Path(w["app_socket"])}) for w in raw["workloads"]
        )
        return Topology(
            workloads,
            Ingress(**raw["ingress"]),
            tuple(raw["services"]),
            raw["zipkin_port"],
            raw.get("trace_sampling_percent", 100.0),
            tuple(Client(**c) for c in raw.get("clients", [])),
        )

    def envoy_log(self, topology: Topology, proxy: str) -> Path:
        """Where `meshmart run` sends a proxy's Envoy log (mesh/runtime/localmesh.py names them)."""
        sidecar = any(s.name == proxy for s in topology.sidecars)
        return self.root.parent / "logs" / (f"{proxy}-envoy.log" if sidecar else f"{proxy}.log")


def _replace(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _key(document: dict[str, Any]) -> str:
    meta = document.get("metadata") or {}
    return f"{document.get('kind')}/{meta.get('namespace', 'default')}/{meta.get('name')}"


def _resource(key: str) -> str:
    kind, namespace, name = key.split("/", 2)
    return f"{kind} {namespace}/{name}"


@cache
def _baseline_sources() -> dict[str, Path]:
    return {
        _key(doc): ISTIO_DIR / name
        for name in DEFAULT_FILES
        for doc in yaml.safe_load_all((ISTIO_DIR / name).read_text(encoding="utf-8"))
        if doc
    }


def shown(path: Path) -> Path:
    """A path as a person in the repository would type it."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def read_documents(path: Path) -> list[dict[str, Any]]:
    """Validated raw documents of one file (the validation is the loader's, with its errors)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise IstioConfigError(f"{path}: {exc.strerror}", file=path) from None
    parse_documents(path, text)
    return [d for d in yaml.safe_load_all(text) if d]


def render(state: MeshState, documents: Documents) -> dict[str, Versions]:
    """Translate and write every proxy's files; returns the versions each proxy will report."""
    topology = state.topology()
    translated = translate(state.config(documents), topology, state.certs, state.paths)
    return {name: write_proxy(state.paths, name, cfg) for name, cfg in translated.items()}


# --- meshmart apply: translate, validate with Envoy, swap; put everything back if refused ---


@dataclass
class Change:
    """The documents an apply ends with, where each came from, and which ones it changes."""

    files: list[Path]
    before: Documents
    documents: Documents
    sources: dict[str, Path]

    @property
    def changed(self) -> list[str]:
        return [key for key, doc in self.documents.items() if self.before.get(key) != doc]

    def file_of(self, key: str) -> Path | None:
        """As given to this apply, or as the file it was applied from earlier."""
        source = self.sources.get(key)
        given = {f.resolve(): f for f in self.files}
        return None if source is None else given.get(source, shown(source))

    def named(self, keys: list[str]) -> str:
        """`file: Kind namespace/name` for each key; the files applied when there is none."""
        found = [f"{self.file_of(k) or '?'}: {_resource(k)}" for k in keys]
        return ", ".join(found) or ", ".join(str(f) for f in self.files)


@dataclass
class PendingApply:
    """A swap done but not confirmed: what to save once confirmed, what to restore if not."""

    change: Change
    previous: dict[str, ProxyConfig]  # every proxy's files before the swap
    versions: dict[str, Versions]  # what each proxy reports once it took the new files
    rejected: dict[str, dict[str, int]]  # each proxy's rejection counters before the swap
    log_sizes: dict[str, int]
    validation_seconds: float


def _translator_refusal(exc: IstioConfigError, change: Change) -> IstioConfigError:
    """The refusal prefixed with the file of the resource it is about."""
    source = change.file_of("/".join(exc.resource)) if exc.resource else None
    if exc.file is not None:
        message = str(exc)  # the loader's, which names the file already
    elif source is None:
        message = f"{change.named([])}: {exc}"
    elif source in change.files:
        message = f"{source}: {exc}"
    else:
        message = f"{source}: {exc} (refused while applying {change.named([])})"
    return IstioConfigError(message, resource=exc.resource, file=exc.file or source)


def _translate(state: MeshState, topology: Topology, change: Change) -> dict[str, ProxyConfig]:
    config = state.config(change.documents, change.sources)
    return translate(config, topology, state.certs, state.paths)


class EnvoyCheck:
    """`envoy --mode validate` on the proxies a change touches."""

    def __init__(self, state: MeshState, topology: Topology) -> None:
        self.state, self.topology = state, topology
        self.bootstraps = {
            p.name: bootstrap_document(state.paths, p, p.name, topology.zipkin_port)
            for p in topology.proxies
        }
        for proxy in self.bootstraps:  # Envoy opens each access log while validating
            state.paths.proxy_dir(proxy).mkdir(parents=True, exist_ok=True)

    def refusals(self, configs: dict[str, ProxyConfig]) -> dict[str, str]:
        return refusals(self.bootstraps, configs)

    def culprits(self, change: Change, refused: set[str]) -> list[str]:
        """The changed documents Envoy refuses on their own (all changed ones if none alone)."""
        if len(change.changed) <= 1:
            return change.changed
        alone = []
        for key in change.changed:
            trial = Change([], change.before, {**change.before, key: change.documents[key]},
                           change.sources)  # fmt: skip
            try:
                translated = _translate(self.state, self.topology, trial)
            except IstioConfigError:
                continue
            if self.refusals({p: translated[p] for p in refused}):
                alone.append(key)
        return alone or change.changed


def apply_files(state: MeshState, files: list[Path], *, envoy_check: bool = True) -> PendingApply:
    """`kubectl apply` for the local mesh: the translator and Envoy check it, then the swap.

    Call `wait_applied` next: it saves the documents once every Envoy took them, and rolls
    every proxy back if one did not. `envoy_check=False` skips Envoy's validation (tests use
    it to reach that rollback).
    """
    before = state.applied_documents()
    change = Change(files, before, dict(before), state.sources())
    for path in files:
        for doc in read_documents(path):
            change.documents[_key(doc)] = doc
            change.sources[_key(doc)] = path.resolve()
    topology = state.topology()
    try:
        translated = _translate(state, topology, change)
    except IstioConfigError as exc:
        raise _translator_refusal(exc, change) from None
    previous = {name: read_proxy(state.paths, name) for name in translated}
    started = time.monotonic()
    if envoy_check:
        envoy = EnvoyCheck(state, topology)
        if found := envoy.refusals({p: c for p, c in translated.items() if c != previous[p]}):
            culprits = envoy.culprits(change, set(found))
            raise IstioConfigError(
                f"{change.named(culprits)}: Envoy refused the config generated from it, so "
                f"nothing was changed. {_by_reason(found)}"
            )
    checked = time.monotonic() - started
    rejected: dict[str, dict[str, int]] = {}
    log_sizes: dict[str, int] = {}
    for proxy in topology.proxies:
        log_sizes[proxy.name] = _size(state.envoy_log(topology, proxy.name))
        with contextlib.suppress(OSError):  # not running: no counters to compare with later
            rejected[proxy.name] = live_status(proxy.admin_port).rejected
    versions = {name: write_proxy(state.paths, name, cfg) for name, cfg in translated.items()}
    return PendingApply(change, previous, versions, rejected, log_sizes, checked)


def _by_reason(found: dict[str, str]) -> str:
    """`proxy, proxy: what Envoy said; proxy: ...`, proxies with the same answer together."""
    by_reason: dict[str, list[str]] = {}
    for proxy, reason in sorted(found.items()):
        by_reason.setdefault(reason, []).append(proxy)
    return "; ".join(f"{', '.join(proxies)}: {reason}" for reason, proxies in by_reason.items())


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def wait_applied(
    state: MeshState,
    pending: PendingApply,
    timeout: float = 10.0,
    status: Callable[[int], LiveStatus] = live_status,
) -> float:
    """Block until every Envoy took the new config, then save it; returns the seconds it took.

    A proxy that rejects it (its rejection counters rise) or does not take it in `timeout`
    makes every proxy go back to its previous files, and nothing is saved.
    """
    topology = state.topology()
    admin = {p.name: p.admin_port for p in topology.proxies}
    started = time.monotonic()
    try:
        wait_taken(admin, pending.versions, timeout, pending.rejected, status)
    except NotTaken as exc:
        said = str(exc)
        if isinstance(exc, Rejected):
            log = state.envoy_log(topology, exc.proxy)
            reasons = logged_rejections(log, pending.log_sizes.get(exc.proxy, 0))
            said += "".join(f": {r}" for r in reasons[:1])
        undone = _roll_back(state, admin, pending, status)
        what = pending.change.named(pending.change.changed)
        raise IstioConfigError(f"{what}: {said}; {undone}") from None
    except BaseException:
        _roll_back(state, admin, pending, status)
        raise
    state.save_documents(pending.change.documents, pending.change.sources)
    return time.monotonic() - started


def _roll_back(
    state: MeshState,
    admin: dict[str, int],
    pending: PendingApply,
    status: Callable[[int], LiveStatus],
) -> str:
    """Every proxy's previous files back (the versions it had), applied.yaml untouched."""
    restored = {
        name: write_proxy(state.paths, name, config)
        for name, config in pending.previous.items()
        if config.listeners or config.clusters
    }
    try:
        wait_taken(admin, restored, 5.0, {}, status)
    except Late as late:
        return f"rolled back the files, but {', '.join(late.proxies)} did not confirm it in 5s"
    return "every proxy is back on its previous config and nothing was applied"
