//go:build tools

// Package tools pins kustomize as a build dependency of meshmart (tests/manifests, deploy/).
// Build with ./build.sh (or: go build -o kustomize sigs.k8s.io/kustomize/kustomize/v5).
package tools

import _ "sigs.k8s.io/kustomize/kustomize/v5"
