#!/usr/bin/env bash
# docker-entrypoint-initdb.d for docker-compose.yml (first start, empty data directory only):
# one login role per service with its own generated password (stored as SCRAM), owning its
# own database, which no other role may connect to. The passwords are files of the compose
# secrets volume (scripts/compose-credentials.py); psql reads them itself, so no password is
# on a command line.
set -euo pipefail

for service in intake pathway referral notify; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    --set=role="$service" --set=password_file="/run/care/$service.password" <<'SQL'
\set password `cat :'password_file'`
SET password_encryption = 'scram-sha-256';
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
done
