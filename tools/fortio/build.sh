#!/usr/bin/env bash
# Build fortio, Istio's own load generator (fortio.org/fortio, pinned in go.mod), for bench/.
#
#   tools/fortio/build.sh            # progress on stderr, the fortio path on stdout
#   FORTIO=/path/fortio build.sh     # use that binary, build nothing
#   build.sh --force-build           # build even if fortio is on PATH
#
# Lookup order (bench/harness/tools.py uses the same): $FORTIO, the cached build
# .cache/tools/fortio/<version>/fortio, `fortio` on PATH, else build it (~30 s cold).
# Idempotent; Go caches live in the git-ignored <repo>/.cache/go (shared with istioctl).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
force_build=false
[[ "${1:-}" == "--force-build" ]] && force_build=true

tool=fortio
env_var=FORTIO
module=fortio.org/fortio
# shellcheck source=../lib.sh
source "$here/../lib.sh"
export CGO_ENABLED=0       # a static binary, as fortio's own releases

log "building fortio.org/fortio@$version with $(go version | awk '{ print $3 }')"
(cd "$here" && go mod download)
start=$SECONDS
tmp="$(mktemp "$out_dir/.fortio.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
(cd "$here" && go build -trimpath -ldflags "-s -w" -o "$tmp" fortio.org/fortio)
mv -f "$tmp" "$bin"   # atomic: a concurrent run sees no binary or a complete one
trap - EXIT
log "built $bin in $((SECONDS - start))s ($(du -h "$bin" | cut -f1))"
echo "$bin"
