# Shared by deploy/kind-up.sh and deploy/kind-down.sh (sourced, not run).
# shellcheck shell=bash
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$repo/.venv/bin/python"
cluster="${KIND_CLUSTER_NAME:-meshmart}"
context="kind-$cluster" # every kubectl/istioctl call names it: never another cluster
ingress="http://localhost:8080" # kind-cluster.yaml maps it to the gateway's NodePort
DRY_RUN="${DRY_RUN:-}"
cd "$repo" # python -m deploy.kindctl needs the repo on sys.path

log() { echo "kind: $*" >&2; }
step() { echo "==> $*" >&2; }
die() { log "error: $*"; exit 1; }
dry_run() { [[ -n "$DRY_RUN" && "$DRY_RUN" != 0 ]]; }

# Print a command as it will run (copy-pasteable), then run it unless --dry-run.
show() { { printf '+' && printf ' %q' "$@" && printf '\n'; } >&2; }
run() { show "$@"; dry_run || "$@"; }
# Same, but also in --dry-run: only for steps that render files and touch no cluster.
run_always() { show "$@"; "$@"; }

# $ISTIOCTL, then istioctl on PATH (a release: its images exist). In --dry-run only, fall back
# to tools/istioctl/build.sh (the cached source build the tests use), enough to render.
find_istioctl() {
  if [[ -n "${ISTIOCTL:-}" ]]; then
    [[ -x "$ISTIOCTL" ]] || die "ISTIOCTL=$ISTIOCTL is not an executable file"
    echo "$ISTIOCTL"
  elif command -v istioctl; then
    :
  elif dry_run; then
    "$repo/tools/istioctl/build.sh"
  else
    return 1
  fi
}

# The commit for a clean tree; a fresh tag for a dirty one, so pods always run what was built.
image_tag() {
  local sha
  sha="$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo dev)"
  if [[ -n "$(git -C "$repo" status --porcelain 2>/dev/null)" ]]; then
    sha+="-dirty-$(date +%s)"
  fi
  echo "$sha"
}
