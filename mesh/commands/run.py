"""`meshmart run`: PostgreSQL, Kafka and the three services on loopback, until Ctrl-C.

Direct mode: each service listens on its own 127.0.0.1 port and calls its peers there.
Everything started here is stopped here, by PID, on Ctrl-C, SIGTERM or a child's failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
import urllib.request
from pathlib import Path
from types import FrameType

from mesh import devsecrets
from mesh.commands.db import DEFAULT_RUN_DIR, data_dir, prepare_databases
from mesh.kafka import (
    KafkaBroker,
    KafkaError,
    TopicSpec,
    ensure_topics,
    running_kafka,
    start_kafka,
    stop_kafka,
)
from mesh.maven import MavenError
from mesh.postgres import (
    PostgresError,
    database_dsn,
    running_server,
    start_postgres,
    stop_postgres,
)
from mesh.processes import Child, python_module, wait_until
from mesh.workloads import SERVICES, ServiceSpec
from services.common import cipher
from services.common.events import TOPIC_PARTITIONS

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_SECONDS = 60.0
TOPICS = [TopicSpec(name, partitions) for name, partitions in TOPIC_PARTITIONS.items()]


class Stop(Exception):
    """Ctrl-C or SIGTERM: shut everything down."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("run", help="run PostgreSQL and the three services")
    parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
    parser.add_argument(
        "--base-port", type=int, default=8100, help="services listen on base+1, base+2, base+3"
    )
    parser.add_argument("--pg-bin", type=Path, default=None)
    parser.set_defaults(func=run)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


def run(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    run_dir: Path = args.run_dir.resolve()
    children: list[Child] = []
    started_pg: Path | None = None
    started_kafka = False
    try:
        admin_dsn, started_pg = _postgres(run_dir, args.pg_bin)
        prepare_databases(admin_dsn)
        started_kafka = running_kafka(run_dir) is None
        broker = start_kafka(run_dir)
        asyncio.run(ensure_topics(broker.bootstrap_servers, TOPICS))
        ports = {spec.name: args.base_port + i + 1 for i, spec in enumerate(SERVICES)}
        env = {**_shared_env(run_dir), "MESHMART_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers}
        for spec in SERVICES:
            child = _service_child(spec, run_dir, ports, admin_dsn, env)
            print(f"starting {spec.name} on 127.0.0.1:{ports[spec.name]}", flush=True)
            child.start()
            children.append(child)
        _wait_ready(children, ports)
        _write_state(run_dir, children, ports, broker)
        _print_urls(ports, broker.bootstrap_servers, run_dir)
        while True:
            for child in children:
                if (code := child.exited()) is not None:
                    print(f"{child.name} exited with {code}:\n{child.log_tail()}", file=sys.stderr)
                    return 1
            time.sleep(0.2)
    except Stop as stop:
        print(f"\n{stop}: stopping", flush=True)
        return 0
    except (PostgresError, KafkaError, MavenError, RuntimeError) as exc:
        print(f"meshmart run: error: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip cleanup
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _shutdown(children, started_pg, run_dir if started_kafka else None, run_dir)


def _postgres(run_dir: Path, pg_bin: Path | None) -> tuple[str, Path | None]:
    """The admin DSN, and the data dir if this run started the server (and so must stop it)."""
    external = os.environ.get("MESHMART_PG_DSN")
    if external:
        return external, None
    pg_data = data_dir(run_dir)
    bin_dir = pg_bin or (Path(p) if (p := os.environ.get("MESHMART_PG_BIN")) else None)
    already = running_server(pg_data) is not None
    server = start_postgres(pg_data, bin_dir=bin_dir)
    return server.admin_dsn, None if already else pg_data


def _shared_env(run_dir: Path) -> dict[str, str]:
    secrets_dir = run_dir / "secrets"
    return {
        "MESHMART_ENVIRONMENT": "development",
        "MESHMART_CIPHER_KEY_FILE": str(devsecrets.cipher_key(secrets_dir)),
        "PYTHONUNBUFFERED": "1",
    }


def _service_child(
    spec: ServiceSpec, run_dir: Path, ports: dict[str, int], admin_dsn: str, env: dict[str, str]
) -> Child:
    key = Path(env["MESHMART_CIPHER_KEY_FILE"]).read_text(encoding="utf-8").strip()
    service_env = {
        **env,
        "MESHMART_PORT": str(ports[spec.name]),
        # Stored encrypted, as a real deployment would: exercises the {cipher} path on every run.
        "MESHMART_DATABASE_URL": cipher.encrypt(database_dsn(admin_dsn, spec.database), key),
        "MESHMART_USER_SERVICE_URL": f"http://127.0.0.1:{ports['user-service']}",
        "MESHMART_CATALOG_SERVICE_URL": f"http://127.0.0.1:{ports['catalog-service']}",
        "MESHMART_ORDER_SERVICE_URL": f"http://127.0.0.1:{ports['order-service']}",
    }
    if spec.name == "user-service":
        service_env["MESHMART_JWT_SIGNING_KEY_FILE"] = str(
            devsecrets.jwt_signing_key(run_dir / "secrets")
        )
        service_env["MESHMART_LIVE_CONFIG_FILE"] = str(REPO_ROOT / "config" / "user-service.yaml")
    return Child(
        spec.name, python_module(spec.package), service_env, run_dir / "logs" / f"{spec.name}.log"
    )


def _is_ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _wait_ready(children: list[Child], ports: dict[str, int]) -> None:
    for child in children:

        def ready_or_dead(child: Child = child) -> bool:
            return child.exited() is not None or _is_ready(ports[child.name])

        if not wait_until(ready_or_dead, READY_TIMEOUT_SECONDS) or child.exited() is not None:
            raise RuntimeError(f"{child.name} did not become ready:\n{child.log_tail()}")
        print(f"{child.name} ready (pid {child.pid})", flush=True)


def _write_state(
    run_dir: Path, children: list[Child], ports: dict[str, int], broker: KafkaBroker
) -> None:
    state = {
        "services": {
            c.name: {"pid": c.pid, "url": f"http://127.0.0.1:{ports[c.name]}"} for c in children
        },
        "kafka": {"pid": broker.pid, "bootstrap_servers": broker.bootstrap_servers},
    }
    (run_dir / "state.json").write_text(json.dumps(state, indent=2))


def _print_urls(ports: dict[str, int], bootstrap: str, run_dir: Path) -> None:
    print("\nmeshmart is up (direct mode: no mesh yet). Press Ctrl-C to stop.")
    for name, port in ports.items():
        print(f"  {name:<16} http://127.0.0.1:{port}")
    print(f"  {'kafka':<16} {bootstrap}")
    print(f"  logs             {run_dir / 'logs'}", flush=True)


def _shutdown(
    children: list[Child], started_pg: Path | None, kafka_run_dir: Path | None, run_dir: Path
) -> None:
    for child in reversed(children):
        code = child.stop(timeout=15)
        if code is not None:
            print(f"stopped {child.name} (pid {child.pid}, exit {code})", flush=True)
    if kafka_run_dir is not None and stop_kafka(kafka_run_dir):
        print("stopped Kafka", flush=True)
    if started_pg is not None and stop_postgres(started_pg):
        print("stopped PostgreSQL", flush=True)
    (run_dir / "state.json").unlink(missing_ok=True)
