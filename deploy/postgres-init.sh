#!/bin/sh
# First start of the Compose PostgreSQL: a role and database for drift-pipeline's store, apart from Dagster's,
# so the store's role can be denied UPDATE/DELETE on the audit tables (docs/operations.md).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v pw="$DRIFT_DB_PASSWORD" <<'SQL'
CREATE ROLE drift LOGIN PASSWORD :'pw';
CREATE DATABASE drift OWNER drift;
SQL
