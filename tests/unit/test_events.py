from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from services.common.events import (
    CATALOG_EVENT,
    ORDER_EVENT,
    OrderPlaced,
    StockRejected,
    StockReserved,
)


def test_round_trip_keeps_type_and_id() -> None:
    event = StockRejected(order_id=uuid.uuid4(), product_id="P", qty=2, reason="insufficient_stock")
    parsed = CATALOG_EVENT.validate_json(event.model_dump_json())
    assert isinstance(parsed, StockRejected) and parsed == event


def test_catalog_events_are_told_apart_by_type() -> None:
    reserved = StockReserved(order_id=uuid.uuid4(), product_id="P", qty=1, remaining_stock=0)
    assert isinstance(CATALOG_EVENT.validate_json(reserved.model_dump_json()), StockReserved)


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"{}",
        b'{"schema_version": 2, "event_type": "OrderPlaced", "order_id": "'
        + str(uuid.uuid4()).encode()
        + b'", "user_id": "u", "product_id": "P", "qty": 1}',
        b'{"event_type": "OrderPlaced", "order_id": "x", "user_id": "u",'
        b' "product_id": "P", "qty": 0}',
        b'{"event_type": "Surprise"}',
    ],
)
def test_invalid_events_are_rejected(raw: bytes) -> None:
    with pytest.raises(ValidationError):
        ORDER_EVENT.validate_json(raw)


def test_added_optional_fields_are_tolerated() -> None:
    event = OrderPlaced(order_id=uuid.uuid4(), user_id="u", product_id="P", qty=1)
    newer = event.model_dump_json()[:-1] + ', "coupon": "X"}'
    assert ORDER_EVENT.validate_json(newer) == event
