CREATE TABLE orders (
    order_id    uuid PRIMARY KEY,
    user_id     text NOT NULL,
    product_id  text NOT NULL,
    qty         integer NOT NULL CHECK (qty >= 1),
    unit_price  integer NOT NULL CHECK (unit_price >= 0),
    total_price bigint NOT NULL CHECK (total_price >= 0),
    status      text NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'REJECTED')),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX orders_by_user_newest_first ON orders (user_id, created_at DESC);

-- One row per (user, Idempotency-Key): the first response, replayed for every retry.
-- It is written in the same transaction as the order, so a key never exists without its order.
CREATE TABLE idempotency_keys (
    user_id         text NOT NULL,
    idempotency_key text NOT NULL,
    request_hash    text NOT NULL,
    response_status integer NOT NULL,
    response_body   text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, idempotency_key)
);
