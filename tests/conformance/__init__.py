"""Local mode's Envoy config compared with istiod's own (tools/istio-oracle)."""
