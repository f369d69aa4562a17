-- order-service v2 gives a volume discount; v1 rows have none.
ALTER TABLE orders ADD COLUMN discount bigint NOT NULL DEFAULT 0 CHECK (discount >= 0);
