#!/usr/bin/env bash
# Build istio-oracle (main.go): istiod's config generation in memory, from the same pinned
# istio.io/istio as tools/istioctl, with the same module and build caches under .cache/go.
# Tags: vtprotobuf as istioctl, but not disable_pgv: istiod's test harness (pilot/test/xdstest,
# imported by pilot/test/xds) calls the generated Validate methods, as `go test` builds it.
#
#   tools/istio-oracle/build.sh      # progress on stderr, the binary's path on stdout
#   ISTIO_ORACLE=/path/binary build.sh   # use that binary, build nothing
#
# Idempotent: a binary is rebuilt only when main.go, go.mod or go.sum change (their hash is
# part of the cached binary's path).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
force_build=true   # never take an istio-oracle from PATH: it must match main.go
tool=istio-oracle
env_var=ISTIO_ORACLE
module=istio.io/istio
sources_hash="$(cat "$here/main.go" "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-12)"
tool_dir_suffix="$sources_hash"
# shellcheck source=../lib.sh
source "$here/../lib.sh"
export CGO_ENABLED=0

log "building $module@$version with $(go version | awk '{ print $3 }')"
(cd "$here" && go mod download)
start=$SECONDS
tmp="$(mktemp "$out_dir/.$tool.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
(cd "$here" && go build -trimpath -tags=vtprotobuf -ldflags "-s -w" -o "$tmp" .)
mv -f "$tmp" "$bin"
trap - EXIT
log "built $bin in $((SECONDS - start))s ($(du -h "$bin" | cut -f1))"
echo "$bin"
