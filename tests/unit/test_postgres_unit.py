"""DSN helpers of mesh.infra.postgres (no server needed)."""

from __future__ import annotations

from mesh.infra.postgres import database_dsn, mask_dsn

ADMIN = "postgresql://meshmart:s3cr%40t@127.0.0.1:5433/postgres?sslmode=disable"


def test_database_dsn_keeps_server_credentials_and_options() -> None:
    assert database_dsn(ADMIN, "order_service") == (
        "postgresql://meshmart:s3cr%40t@127.0.0.1:5433/order_service?sslmode=disable"
    )


def test_database_dsn_quotes_odd_names() -> None:
    assert database_dsn(ADMIN, "a b/c").split("?")[0].endswith("/a%20b%2Fc")


def test_mask_dsn_hides_password_only() -> None:
    assert mask_dsn(ADMIN) == "postgresql://meshmart:***@127.0.0.1:5433/postgres?sslmode=disable"
    assert mask_dsn("postgresql://meshmart@localhost/db") == "postgresql://meshmart@localhost/db"
    assert mask_dsn("host=x password=hunter2 dbname=y") == "host=x password=*** dbname=y"
