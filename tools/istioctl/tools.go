//go:build tools

// Package tools pins istioctl as a build dependency of meshmart.
// Build with ./build.sh (or: go build -o istioctl istio.io/istio/istioctl/cmd/istioctl).
package tools

import _ "istio.io/istio/istioctl/cmd/istioctl"
