#!/bin/bash
# Runs once, when the postgres image initialises an empty data directory: one role and one
# database per service (mesh/control/workloads.py names them), each role owning only its database.
# Passwords come from the <service>-database Secrets that deploy/kind-up.sh generates.
set -euo pipefail

create() { # <role and database> <password>
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
       -v name="$1" -v password="$2" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
}

create user_service "$USER_SERVICE_DB_PASSWORD"
create catalog_service "$CATALOG_SERVICE_DB_PASSWORD"
create order_service "$ORDER_SERVICE_DB_PASSWORD"
