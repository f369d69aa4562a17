#!/usr/bin/env bash
# Cluster mode in one command (`make kind-up`): a kind cluster with Istio, the three services,
# PostgreSQL, Kafka, the v2 canary, Kiali/Prometheus/Zipkin, and the default istio/ files.
#
#   deploy/kind-up.sh             # needs docker, kind, kubectl, istioctl (a released one)
#   deploy/kind-up.sh --dry-run   # or DRY_RUN=1: print every command, render every manifest
#                                 # into the work dir; needs none of docker/kind/kubectl
#
# Environment: KIND_CLUSTER_NAME (meshmart), KIND_WORK_DIR (.cache/kind/<cluster>: rendered
# manifests and the generated secrets), ISTIOCTL (an istioctl binary), ISTIO_TAG (Istio release
# whose images to install when istioctl is a source build), USE_KUBECTL_KUSTOMIZE=1 (render
# with `kubectl kustomize` instead of tools/kustomize). Idempotent: re-running updates in place.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/lib.sh
source "$here/lib.sh"

case "${1:-}" in --dry-run) DRY_RUN=1 ;; "") ;; *) die "usage: $0 [--dry-run]" ;; esac
work="${KIND_WORK_DIR:-$repo/.cache/kind/$cluster}"
rendered="$work/rendered"

# --- prerequisites -------------------------------------------------------------------------
step "checking prerequisites"
[[ -x "$python" ]] || die "$python missing: run 'make setup' first (installs the locked Python deps)"
missing=()
need() { # <tool> <where to get it>
  command -v "$1" >/dev/null && return 0
  if dry_run; then log "not installed (fine for --dry-run): $1 — $2"; else missing+=("$1: $2"); fi
}
need docker "Docker Engine or Docker Desktop, https://docs.docker.com/get-docker/"
need kind "kind v0.33+, https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
need kubectl "kubectl, https://kubernetes.io/docs/tasks/tools/"
need curl "curl, from your OS packages (checks the shop answers at the end)"
istioctl="$(find_istioctl)" || missing+=("istioctl: a release, https://istio.io/latest/docs/setup/getting-started/#download")
((${#missing[@]} == 0)) || die "missing prerequisites:$(printf '\n  - %s' "${missing[@]}")"
if ! dry_run && ! docker info >/dev/null 2>&1; then
  die "docker is installed but its daemon does not answer (start Docker, then re-run)"
fi
install_flags=(install -y -f "$repo/k8s/components/addons/istio-operator.yaml")
if [[ "$("$istioctl" version --remote=false 2>/dev/null)" == *v0.0.0-* ]]; then
  # tools/istioctl/build.sh stamps a pseudo-version whose images were never published.
  if [[ -n "${ISTIO_TAG:-}" ]]; then
    install_flags+=(--set hub=docker.io/istio --set "tag=$ISTIO_TAG")
  elif dry_run; then
    log "warning: $istioctl is a source build; a real run needs a released istioctl or ISTIO_TAG=<release>"
  else
    die "$istioctl is a source build (tools/istioctl/build.sh) with unpublished image tags: put a released istioctl on PATH, or set ISTIO_TAG=<Istio release, e.g. 1.31.0>"
  fi
fi
log "istioctl: $istioctl"

# --- render: everything that will be applied, also in --dry-run ----------------------------
step "rendering manifests into $rendered"
tag="$(image_tag)"
mkdir -p "$rendered"
run_always "$python" -m deploy.kindctl workdir "$work" --tag "$tag" >/dev/null
if [[ "${USE_KUBECTL_KUSTOMIZE:-}" == 1 ]]; then kustomize=(kubectl kustomize)
else kustomize=("$("$repo/tools/kustomize/build.sh")" build)
fi
run_always "${kustomize[@]}" "$work" >"$rendered/meshmart.yaml"
run_always "$istioctl" manifest generate "${install_flags[@]:2}" >"$rendered/istio-install.yaml"
mapfile -t istio_files < <("$python" -m deploy.kindctl istio-defaults)
log "rendered: $(ls "$rendered" | tr '\n' ' ')+ istio/ ${istio_files[*]}"

# --- cluster -------------------------------------------------------------------------------
step "kind cluster $cluster"
if ! dry_run && kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  log "cluster $cluster exists: reusing it"
else
  run kind create cluster --config "$repo/kind-cluster.yaml" --name "$cluster" --wait 120s
fi

step "Istio (istiod with PILOT_JWT_ENABLE_REMOTE_JWKS=hybrid, ingress on NodePort 30080)"
run "$istioctl" --context "$context" "${install_flags[@]}"

step "images (tag $tag)"
while read -r image dockerfile; do
  run docker build -f "$repo/$dockerfile" -t "meshmart/$image:$tag" "$repo"
  run kind load docker-image --name "$cluster" "meshmart/$image:$tag"
done < <("$python" -m deploy.kindctl images)

step "applying k8s/overlays/kind (+ generated secrets) and the default istio/ files"
run kubectl --context "$context" apply -f "$rendered/meshmart.yaml"
for file in "${istio_files[@]}"; do
  run kubectl --context "$context" apply -f "$repo/istio/$file"
done

step "waiting for the rollout"
run kubectl --context "$context" -n meshmart rollout status statefulset/postgres --timeout=300s
run kubectl --context "$context" -n meshmart rollout status statefulset/kafka --timeout=300s
run kubectl --context "$context" -n meshmart wait --for=condition=complete job/kafka-topics --timeout=300s
run kubectl --context "$context" -n meshmart wait --for=condition=Available deployment --all --timeout=300s
run kubectl --context "$context" -n istio-system wait --for=condition=Available deployment --all --timeout=300s
run curl -fsS --retry 30 --retry-delay 2 --retry-all-errors -o /dev/null "$ingress/catalog-service/catalogs"

step "meshmart is up on $context (kind made it kubectl's current context)"
# The README's cluster journey (## Cluster mode); tests/manifests checks they stay in step.
cat <<EOF
  shop            curl -s $ingress/catalog-service/catalogs
  mesh graph      istioctl dashboard kiali
  traces          istioctl dashboard zipkin
  canary          kubectl apply -f istio/virtual-service-order-90-10.yaml
                  kubectl apply -f istio/virtual-service-order-50-50.yaml
                  kubectl apply -f istio/virtual-service-order-v2.yaml
  faults          kubectl apply -f istio/virtual-service-order-test-delay.yaml
                  kubectl apply -f istio/virtual-service-order-test-abort.yaml
  back to v1      kubectl apply -f istio/virtual-service-all-v1.yaml
  stop            make kind-down
EOF
