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

log() { echo "istioctl: $*" >&2; }

version="$(awk '$1 == "require" && $2 == "istio.io/istio" { print $3 }' "$here/go.mod")"
[[ -n "$version" ]] || { log "cannot read the istio.io/istio version from $here/go.mod"; exit 1; }
out_dir="$repo/.cache/tools/istioctl/$version"
bin="$out_dir/istioctl"

if [[ -n "${ISTIOCTL:-}" ]]; then
  [[ -x "$ISTIOCTL" ]] || { log "ISTIOCTL=$ISTIOCTL is not an executable file"; exit 1; }
  log "using \$ISTIOCTL=$ISTIOCTL (nothing to build)"
  echo "$ISTIOCTL"
  exit 0
fi
if [[ -x "$bin" ]]; then
  log "already built: $bin (istio.io/istio $version)"
  echo "$bin"
  exit 0
fi
if ! $force_build && on_path="$(command -v istioctl)"; then
  log "using istioctl from PATH: $on_path (pass --force-build to build $version instead)"
  echo "$on_path"
  exit 0
fi

command -v go >/dev/null || { log "go is not installed (need Go >= $(awk '$1 == "go" { print $2 }' "$here/go.mod"))"; exit 1; }
export GOMODCACHE="$repo/.cache/go/mod"
export GOCACHE="$repo/.cache/go/build"
export GOTOOLCHAIN=local   # use the installed Go; never download a toolchain
export CGO_ENABLED=0       # as Istio's common/scripts/gobuild.sh
mkdir -p "$out_dir" "$GOMODCACHE" "$GOCACHE"

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
