#!/usr/bin/env bash
# Build the real istioctl from the Go module proxy (istio.io/istio, pinned in go.mod),
# for `istioctl validate` / `istioctl analyze --use-kube=false` in tests/manifests.
#
#   tools/istioctl/build.sh           # prints progress on stderr, the istioctl path on stdout
#   ISTIOCTL=/path/istioctl build.sh  # use that binary, build nothing
#   build.sh --force-build            # build even if istioctl is on PATH
#
# Lookup order (tests/manifests/test_istio_files.py uses the same): $ISTIOCTL, the cached
# build .cache/tools/istioctl/<version>/istioctl, `istioctl` on PATH, else build it.
# Idempotent: an existing binary is reused. Go module and build caches live in the
# git-ignored <repo>/.cache/go. The first build takes minutes (a few thousand packages).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
force_build=false
[[ "${1:-}" == "--force-build" ]] && force_build=true

tool=istioctl
env_var=ISTIOCTL
module=istio.io/istio
# shellcheck source=../lib.sh
source "$here/../lib.sh"
export CGO_ENABLED=0       # as Istio's common/scripts/gobuild.sh

log "building istio.io/istio@$version with $(go version | awk '{ print $3 }')"
log "GOMODCACHE=$GOMODCACHE GOCACHE=$GOCACHE"
log "downloading modules (go mod download)..."
(cd "$here" && go mod download)
log "compiling (first build: several minutes)..."
start=$SECONDS
pkg=istio.io/istio/pkg/version
rev="${version##*-}"
ldflags="-s -w -X $pkg.buildVersion=$version -X $pkg.buildGitRevision=$rev -X $pkg.buildStatus=Clean"
ldflags+=" -X $pkg.buildTag=$version -X $pkg.buildHub=goproxy -X $pkg.buildOS=$(go env GOOS) -X $pkg.buildArch=$(go env GOARCH)"
tmp="$(mktemp "$out_dir/.istioctl.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
# Same tags and flags as Istio's release build (Makefile.core.mk STANDARD_TAGS, gobuild.sh).
(cd "$here" && go build -trimpath -tags=vtprotobuf,disable_pgv -ldflags "$ldflags" -o "$tmp" istio.io/istio/istioctl/cmd/istioctl)
mv -f "$tmp" "$bin"   # atomic: a concurrent run sees no binary or a complete one
trap - EXIT
log "built $bin in $((SECONDS - start))s ($(du -h "$bin" | cut -f1))"
"$bin" version --remote=false >&2 || true
echo "$bin"
