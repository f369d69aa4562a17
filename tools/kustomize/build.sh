#!/usr/bin/env bash
# Build kustomize from the Go module proxy (sigs.k8s.io/kustomize/kustomize/v5, pinned in go.mod),
# for `kustomize build k8s/...` in tests/manifests and deploy/kind-up.sh.
#
#   tools/kustomize/build.sh            # progress on stderr, the kustomize path on stdout
#   KUSTOMIZE=/path/kustomize build.sh  # use that binary, build nothing
#   build.sh --force-build              # build even if kustomize is on PATH
#
# Lookup order (tests/manifests/tools.py uses the same): $KUSTOMIZE, the cached build
# .cache/tools/kustomize/<version>/kustomize, `kustomize` on PATH, else build it.
# `kubectl kustomize` is not used by default: kubectl embeds whatever kustomize it was released
# with, and the tests render with the one version pinned here. deploy/kind-up.sh takes it on
# request (USE_KUBECTL_KUSTOMIZE=1) for users without Go.
# Idempotent; Go caches live in the git-ignored <repo>/.cache/go (shared with istioctl).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
force_build=false
[[ "${1:-}" == "--force-build" ]] && force_build=true

tool=kustomize
env_var=KUSTOMIZE
module=sigs.k8s.io/kustomize/kustomize/v5
# shellcheck source=../lib.sh
source "$here/../lib.sh"
export CGO_ENABLED=0       # a static binary, as kustomize's own releases

log "building sigs.k8s.io/kustomize/kustomize/v5@$version with $(go version | awk '{ print $3 }')"
(cd "$here" && go mod download)
start=$SECONDS
tmp="$(mktemp "$out_dir/.kustomize.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
# The version is stamped the way kustomize's release build does (provenance.version).
(cd "$here" && go build -trimpath -ldflags "-s -w -X sigs.k8s.io/kustomize/api/provenance.version=$version" \
  -o "$tmp" sigs.k8s.io/kustomize/kustomize/v5)
mv -f "$tmp" "$bin"   # atomic: a concurrent run sees no binary or a complete one
trap - EXIT
log "built $bin in $((SECONDS - start))s ($(du -h "$bin" | cut -f1))"
echo "$bin"
