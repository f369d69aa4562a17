"""The order-placement flow on fakes: idempotency, catalog price and what gets stored."""

from __future__ import annotations

import json

import pytest

from services.common.errors import ProblemError
from services.order import idempotency, service
from services.order.idempotency import StoredResponse
from services.order.models import CatalogProduct, Order, OrderRequest
from services.order.service import CatalogUnavailable, Placed

USER = "user-1"
PRODUCT = CatalogProduct(product_id="CATALOG-001", unit_price=1500)
REQUEST = OrderRequest(product_id="CATALOG-001", qty=3, unit_price=1500)


class FakeRepository:
    """In memory, with the real one's contract: one response per (user, key), first wins."""

    def __init__(self) -> None:
        self.orders: list[Order] = []
        self.responses: dict[tuple[str, str], StoredResponse] = {}
        self._committed_meanwhile: dict[tuple[str, str], StoredResponse] = {}

    def commit_meanwhile(self, user_id: str, key: str, stored: StoredResponse) -> None:
        """A concurrent request commits this between our lookup and our save."""
        self._committed_meanwhile[(user_id, key)] = stored

    async def find_stored_response(self, user_id: str, key: str) -> StoredResponse | None:
        return self.responses.get((user_id, key))

    async def save_order(
        self, order: Order, idempotency: tuple[str, str] | None, status: int, body: str
    ) -> StoredResponse | None:
        self.responses.update(self._committed_meanwhile)
        self._committed_meanwhile.clear()
        if idempotency is not None:
            key, request_hash = idempotency
            earlier = self.responses.get((order.user_id, key))
            if earlier is not None:
                return earlier
            self.responses[(order.user_id, key)] = StoredResponse(request_hash, status, body)
        self.orders.append(order)
        return None


class FakeCatalog:
    def __init__(self, *products: CatalogProduct, available: bool = True) -> None:
        self.products = {p.product_id: p for p in products}
        self.available = available
        self.asked: list[str] = []

    async def __call__(self, product_id: str) -> CatalogProduct | None:
        self.asked.append(product_id)
        if not self.available:
            raise CatalogUnavailable("catalog-service: HTTP 503")
        return self.products.get(product_id)


async def place(
    repo: FakeRepository,
    catalog: FakeCatalog,
    request: OrderRequest = REQUEST,
    *,
    key: str | None = "key-1",
    user_id: str = USER,
    version: str = "v1",
) -> Placed:
    return await service.place_order(
        repo,
        catalog,
        user_id=user_id,
        request=request,
        idempotency_key=key,
        service_version=version,
    )


@pytest.mark.parametrize(
    ("version", "qty", "discount", "total"),
    [("v1", 3, 0, 4500), ("v1", 10, 0, 15000), ("v2", 3, 0, 4500), ("v2", 10, 1500, 13500)],
)
async def test_first_placement_is_a_pending_order_saved_once(
    version: str, qty: int, discount: int, total: int
) -> None:
    repo, catalog = FakeRepository(), FakeCatalog(PRODUCT)
    request = REQUEST.model_copy(update={"qty": qty})

    placed = await place(repo, catalog, request, version=version)

    assert placed.status == 201 and placed.replayed is False
    body = json.loads(placed.body)
    assert body["status"] == "PENDING"
    assert (body["userId"], body["productId"], body["qty"]) == (USER, "CATALOG-001", qty)
    assert (body["unitPrice"], body["discount"], body["totalPrice"]) == (1500, discount, total)
    assert [o.order_id for o in repo.orders] == [body["orderId"]]
    assert repo.responses[(USER, "key-1")] == StoredResponse(
        idempotency.fingerprint(USER, request), 201, placed.body
    )
    assert catalog.asked == ["CATALOG-001"]


async def test_retry_with_same_key_and_body_replays_without_a_second_order() -> None:
    repo, catalog = FakeRepository(), FakeCatalog(PRODUCT)
    first = await place(repo, catalog)

    again = await place(repo, catalog)

    assert again == Placed(201, first.body, replayed=True)
    assert len(repo.orders) == 1
    assert catalog.asked == ["CATALOG-001"]  # a replay does not ask the catalog again


async def test_same_key_with_other_body_is_refused() -> None:
    repo, catalog = FakeRepository(), FakeCatalog(PRODUCT)
    await place(repo, catalog)

    with pytest.raises(ProblemError) as info:
        await place(repo, catalog, REQUEST.model_copy(update={"qty": 4}))

    assert info.value.status == 422 and info.value.errors[0].field == "Idempotency-Key"
    assert len(repo.orders) == 1


async def test_keys_belong_to_one_user() -> None:
    repo, catalog = FakeRepository(), FakeCatalog(PRODUCT)
    await place(repo, catalog, user_id="user-1")

    other = await place(repo, catalog, user_id="user-2")

    assert other.replayed is False
    assert [o.user_id for o in repo.orders] == ["user-1", "user-2"]


async def test_concurrent_retry_that_won_the_race_is_replayed() -> None:
    repo, catalog = FakeRepository(), FakeCatalog(PRODUCT)
    winner = StoredResponse(idempotency.fingerprint(USER, REQUEST), 201, '{"orderId":"first"}')
    repo.commit_meanwhile(USER, "key-1", winner)

    placed = await place(repo, catalog)

    assert placed == Placed(201, '{"orderId":"first"}', replayed=True)
    assert repo.orders == []


async def test_concurrent_other_request_that_won_the_race_is_a_conflict() -> None:
    repo, catalog = FakeRepository(), FakeCatalog(PRODUCT)
    other = REQUEST.model_copy(update={"qty": 7})
    repo.commit_meanwhile(
        USER, "key-1", StoredResponse(idempotency.fingerprint(USER, other), 201, "{}")
    )

    with pytest.raises(ProblemError) as info:
        await place(repo, catalog)

    assert info.value.status == 422 and info.value.errors[0].field == "Idempotency-Key"
    assert repo.orders == []


async def test_unknown_product_places_nothing() -> None:
    repo = FakeRepository()

    with pytest.raises(ProblemError) as info:
        await place(repo, FakeCatalog())

    assert info.value.status == 422 and info.value.errors[0].field == "productId"
    assert repo.orders == [] and repo.responses == {}


async def test_price_other_than_the_catalogs_places_nothing() -> None:
    repo = FakeRepository()
    catalog = FakeCatalog(PRODUCT.model_copy(update={"unit_price": 1400}))

    with pytest.raises(ProblemError) as info:
        await place(repo, catalog)

    assert info.value.status == 422 and info.value.errors[0].field == "unitPrice"
    assert repo.orders == [] and repo.responses == {}


async def test_catalog_unavailable_places_nothing() -> None:
    repo = FakeRepository()

    with pytest.raises(CatalogUnavailable):
        await place(repo, FakeCatalog(PRODUCT, available=False))

    assert repo.orders == [] and repo.responses == {}


async def test_without_a_key_every_request_is_a_new_order() -> None:
    repo, catalog = FakeRepository(), FakeCatalog(PRODUCT)

    first = await place(repo, catalog, key=None)
    second = await place(repo, catalog, key=None)

    assert (first.replayed, second.replayed) == (False, False)
    assert first.body != second.body and len(repo.orders) == 2
    assert repo.responses == {}
