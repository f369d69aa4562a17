"""`meshmart apply -f FILE`: change the running local mesh like `kubectl apply` changes a cluster.

The file is validated against local mode's Istio subset, the whole mesh is re-translated, the
real Envoy validates each changed proxy's config, and each Envoy's files are swapped atomically;
Envoy reloads them live (same PID, no dropped requests). The command returns once every proxy
reports the new versions. A refusal, at any of these steps, leaves every proxy and applied.yaml
as they were, and names the file, the resource and what was refused.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mesh.control.state import MeshState, apply_files, wait_applied
from mesh.istio.loader import IstioConfigError
from mesh.paths import DEFAULT_RUN_DIR


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("apply", help="apply Istio YAML to the running local mesh")
    parser.add_argument("-f", "--filename", type=Path, action="append", required=True)
    parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    state = MeshState(args.run_dir)
    try:
        pending = apply_files(state, args.filename)
        seconds = wait_applied(state, pending)
    except IstioConfigError as exc:
        print(f"meshmart apply: error: {exc}", file=sys.stderr)
        return 1
    for path in args.filename:
        print(f"{path}: applied")
    print(
        f"{len(pending.versions)} proxies updated live in {seconds * 1000:.0f} ms "
        f"(validated by Envoy in {pending.validation_seconds * 1000:.0f} ms)"
    )
    return 0
