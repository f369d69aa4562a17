//go:build tools

// Package tools pins fortio, Istio's own load generator, as a build dependency of meshmart's
// benchmarks (bench/). Build with ./build.sh (or: go build -o fortio fortio.org/fortio).
package tools

import _ "fortio.org/fortio"
