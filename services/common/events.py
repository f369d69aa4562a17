"""Integration events: versioned JSON documents, validated with pydantic on both sides.

Every event carries its schema version, a unique id (consumers deduplicate on it) and when
it happened. Trace context travels in Kafka headers, not in the document.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

ORDER_EVENTS = "order-events"
CATALOG_EVENTS = "catalog-events"
DLQ_SUFFIX = ".dlq"

# Topic -> partitions. Keys are product ids, so one product's events stay in order on one
# partition while different products are processed in parallel.
TOPIC_PARTITIONS: dict[str, int] = {
    ORDER_EVENTS: 3,
    CATALOG_EVENTS: 3,
    ORDER_EVENTS + DLQ_SUFFIX: 1,
    CATALOG_EVENTS + DLQ_SUFFIX: 1,
}
# Topic -> the service whose outbox relay publishes it (a topic's consumer publishes its DLQ).
TOPIC_PRODUCERS: dict[str, str] = {ORDER_EVENTS: "order-service", CATALOG_EVENTS: "catalog-service"}


def _now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    # Tolerant reader: a producer may add optional fields within a schema version without
    # breaking older consumers; anything incompatible bumps `schema_version`.
    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: Literal[1] = 1
    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    occurred_at: datetime = Field(default_factory=_now)


class OrderPlaced(Event):
    event_type: Literal["OrderPlaced"] = "OrderPlaced"
    order_id: uuid.UUID
    user_id: str
    product_id: str
    qty: int = Field(ge=1)


class StockReserved(Event):
    event_type: Literal["StockReserved"] = "StockReserved"
    order_id: uuid.UUID
    product_id: str
    qty: int = Field(ge=1)
    remaining_stock: int = Field(ge=0)


class StockRejected(Event):
    event_type: Literal["StockRejected"] = "StockRejected"
    order_id: uuid.UUID
    product_id: str
    qty: int = Field(ge=1)
    reason: Literal["insufficient_stock", "unknown_product"]


OrderEvent = OrderPlaced
CatalogEvent = Annotated[StockReserved | StockRejected, Field(discriminator="event_type")]

ORDER_EVENT = TypeAdapter(OrderEvent)
CATALOG_EVENT = TypeAdapter[StockReserved | StockRejected](CatalogEvent)
