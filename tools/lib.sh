# Shared by tools/*/build.sh: find an existing binary of a Go tool, or prepare to build it.
# Source it after setting: tool (name), env_var (override variable), here, repo, force_build,
# and module (the go.mod require path whose version is the tool's).

log() { echo "$tool: $*" >&2; }

# `require m v` on one line, or `m v` inside a require ( ... ) block.
version="$(awk -v m="$module" '$1 == "require" && $2 == m { print $3 } $1 == m && NF >= 2 { print $2 }' "$here/go.mod" | head -n 1)"
[[ -n "$version" ]] || { log "cannot read the $module version from $here/go.mod"; exit 1; }
out_dir="$repo/.cache/tools/$tool/$version${tool_dir_suffix:+-$tool_dir_suffix}"
bin="$out_dir/$tool"

# Lookup order: $<ENV_VAR>, the cached build, the tool on PATH (unless --force-build); each
# prints the path and exits, so what follows in the caller only runs when a build is needed.
override="${!env_var:-}"
if [[ -n "$override" ]]; then
  [[ -x "$override" ]] || { log "$env_var=$override is not an executable file"; exit 1; }
  log "using \$$env_var=$override (nothing to build)"
  echo "$override"
  exit 0
fi
if [[ -x "$bin" ]]; then
  log "already built: $bin ($module $version)"
  echo "$bin"
  exit 0
fi
if ! $force_build && on_path="$(command -v "$tool")"; then
  log "using $tool from PATH: $on_path (pass --force-build to build $version instead)"
  echo "$on_path"
  exit 0
fi

command -v go >/dev/null || {
  log "go is not installed (need Go >= $(awk '$1 == "go" { print $2 }' "$here/go.mod"))"
  exit 1
}
export GOMODCACHE="$repo/.cache/go/mod"
export GOCACHE="$repo/.cache/go/build"
export GOTOOLCHAIN=local   # use the installed Go; never download a toolchain
mkdir -p "$out_dir" "$GOMODCACHE" "$GOCACHE"
