from __future__ import annotations

import pytest

from services.common.errors import ProblemError
from services.order import idempotency, pricing
from services.order.idempotency import Decision, StoredResponse
from services.order.models import CatalogProduct, OrderRequest

REQUEST = OrderRequest(product_id="CATALOG-001", qty=3, unit_price=1500)


def test_total_price() -> None:
    assert pricing.total_price(3, 1500) == 4500


def test_catalog_price_is_the_truth() -> None:
    pricing.check_against_catalog(
        REQUEST, CatalogProduct(product_id="CATALOG-001", unit_price=1500)
    )
    with pytest.raises(ProblemError) as info:
        pricing.check_against_catalog(
            REQUEST, CatalogProduct(product_id="CATALOG-001", unit_price=1400)
        )
    assert info.value.status == 422 and info.value.errors[0].field == "unitPrice"


def test_unknown_product_is_a_client_error() -> None:
    with pytest.raises(ProblemError) as info:
        pricing.check_against_catalog(REQUEST, None)
    assert info.value.status == 422 and info.value.errors[0].field == "productId"


def test_idempotency_decisions() -> None:
    digest = idempotency.fingerprint("u1", REQUEST)
    assert idempotency.decide(None, digest) is Decision.PROCEED
    assert idempotency.decide(StoredResponse(digest, 201, "{}"), digest) is Decision.REPLAY
    other = idempotency.fingerprint("u1", REQUEST.model_copy(update={"qty": 4}))
    assert idempotency.decide(StoredResponse(other, 201, "{}"), digest) is Decision.CONFLICT


def test_fingerprint_depends_on_user_and_body() -> None:
    assert idempotency.fingerprint("u1", REQUEST) == idempotency.fingerprint("u1", REQUEST)
    assert idempotency.fingerprint("u1", REQUEST) != idempotency.fingerprint("u2", REQUEST)


@pytest.mark.parametrize("key", ["", "x" * 201, "bad\nkey"])
def test_bad_idempotency_keys(key: str) -> None:
    with pytest.raises(ProblemError) as info:
        idempotency.key_from_header(key)
    assert info.value.status == 400 and info.value.errors[0].field == "Idempotency-Key"


def test_absent_key_means_no_idempotency() -> None:
    assert idempotency.key_from_header(None) is None
    assert idempotency.key_from_header("k-1") == "k-1"


def test_v1_has_no_discount() -> None:
    assert pricing.discount(50, 100, "v1") == 0
    assert pricing.total_price(50, 100, "v1") == 5000


def test_v2_volume_discount_from_ten_units() -> None:
    assert pricing.discount(9, 1500, "v2") == 0
    assert pricing.discount(10, 1500, "v2") == 1500
    assert pricing.total_price(10, 1500, "v2") == 13500
    assert pricing.total_price(11, 999, "v2") == 10989 - 1098  # rounded down in the shop's favour
