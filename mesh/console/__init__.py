"""`meshmart console`: local mode's Kiali, an ASGI app (Starlette) served by hypercorn.

Figures come from where Kiali's come from in a cluster, minus Prometheus: each proxy's Envoy
admin API (HTTP connection manager and cluster counters, histogram quantiles, per-endpoint
counters) and Kafka's consumer group offsets, sampled every few seconds while someone looks.
"""
