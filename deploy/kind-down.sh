#!/usr/bin/env bash
# `make kind-down`: delete the kind cluster (Istio, the data, every pod with it) and the
# generated secrets, which only that cluster's PostgreSQL knew.
#
#   deploy/kind-down.sh [--dry-run]   # or DRY_RUN=1; KIND_CLUSTER_NAME, KIND_WORK_DIR as kind-up
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/lib.sh
source "$here/lib.sh"

case "${1:-}" in --dry-run) DRY_RUN=1 ;; "") ;; *) die "usage: $0 [--dry-run]" ;; esac
work="${KIND_WORK_DIR:-$repo/.cache/kind/$cluster}"

if dry_run || command -v kind >/dev/null; then
  step "deleting kind cluster $cluster"
  run kind delete cluster --name "$cluster"
else
  log "kind is not installed: there is no cluster to delete"
fi
step "removing $work (rendered manifests, generated secrets)"
run rm -rf "$work"
