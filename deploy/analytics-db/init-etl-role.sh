#!/usr/bin/env bash
# Runs once, when the analytics-db volume is first initialised (postgres image entrypoint):
# the ETL role owns the analytics database (and its public schema) but is not a superuser,
# the same shape as the local stack.
set -euo pipefail
: "${TARGET_USER:?set TARGET_USER}" "${TARGET_PASSWORD:?set TARGET_PASSWORD in .env}" "${TARGET_DATABASE:?set TARGET_DATABASE}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v etl_user="$TARGET_USER" -v etl_password="$TARGET_PASSWORD" -v etl_db="$TARGET_DATABASE" <<'SQL'
CREATE ROLE :"etl_user" LOGIN PASSWORD :'etl_password';
CREATE DATABASE :"etl_db" OWNER :"etl_user";
SQL

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$TARGET_DATABASE" \
     -v etl_user="$TARGET_USER" <<'SQL'
ALTER SCHEMA public OWNER TO :"etl_user";
SQL
