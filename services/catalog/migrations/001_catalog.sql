CREATE TABLE catalog (
    product_id   text PRIMARY KEY,
    product_name text NOT NULL,
    unit_price   integer NOT NULL CHECK (unit_price >= 0),
    -- Stock never goes below zero, whatever the code does: the database refuses it.
    stock        integer NOT NULL CHECK (stock >= 0),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- The seed's data.sql rows.
INSERT INTO catalog (product_id, product_name, unit_price, stock) VALUES
    ('CATALOG-001', 'Berlin', 1500, 100),
    ('CATALOG-002', 'Tokyo', 1000, 110),
    ('CATALOG-003', 'Stockholm', 2000, 120)
ON CONFLICT (product_id) DO NOTHING;
