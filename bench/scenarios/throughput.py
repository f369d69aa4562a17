"""Scenario 2: the most each endpoint serves, straight to the app and through the ingress."""

from __future__ import annotations

import json
from typing import Any

from bench.fortio import Target, load
from bench.plan import Plan
from bench.sampler import sampling
from bench.scenarios.paths import app_direct, ingress
from bench.shop import Shop
from bench.shopper import catalog, sign_up


def _targets(shop: Shop) -> dict[str, dict[str, Target]]:
    reader = sign_up(shop.ingress)  # reads its own user (with its orders) over and over
    buyer = sign_up(shop.ingress)  # places the orders, so the reader's list stays short
    product = catalog(shop.ingress)[0]
    order = json.dumps({"productId": product["productId"], "qty": 1,
                        "unitPrice": product["unitPrice"]})  # fmt: skip
    item = f"/catalogs/{product['productId']}"
    return {
        "GET /catalogs": {
            "direct": app_direct(shop),
            "ingress": ingress(shop),
        },
        "GET /catalogs/{id}": {
            "direct": app_direct(shop, path=item),
            "ingress": ingress(shop, f"/catalog-service{item}"),
        },
        "GET /users/{id} (fan-out to order-service)": {
            "direct": app_direct(
                shop, "user-service", f"/users/{reader.user_id}", (reader.verified_payload,)
            ),
            "ingress": ingress(shop, f"/user-service/users/{reader.user_id}", (reader.bearer,)),
        },
        "POST /{userId}/orders": {
            "direct": app_direct(
                shop, "order-service", f"/{buyer.user_id}/orders", (buyer.verified_payload,), order
            ),
            "ingress": ingress(
                shop, f"/order-service/{buyer.user_id}/orders", (buyer.bearer,), order
            ),
        },
    }


def run(shop: Shop, plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for endpoint, targets in _targets(shop).items():
        out[endpoint] = {}
        for way, target in targets.items():
            print(f"  throughput: {endpoint} {way}", flush=True)
            with sampling(shop.kinds()) as window:
                result = load(
                    target, qps=0, seconds=plan.max_seconds, connections=plan.max_connections
                )
            out[endpoint][way] = {**result.as_dict(), "usage": window.as_dict(result.actual_qps)}
    return out
