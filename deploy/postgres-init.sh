#!/bin/sh
# Runs once, when the postgres container starts on an empty data volume (docker-entrypoint-initdb.d):
# one role and database for Frontdesk, one role and two databases for Temporal. Each role owns only
# its own databases; neither is a superuser. Passwords come from the container's environment and
# reach psql as variables, never inside the SQL text.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v frontdesk_password="$FRONTDESK_DB_PASSWORD" \
  -v temporal_password="$TEMPORAL_DB_PASSWORD" <<'SQL'
CREATE ROLE frontdesk LOGIN PASSWORD :'frontdesk_password';
CREATE DATABASE frontdesk OWNER frontdesk;
CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
SQL
