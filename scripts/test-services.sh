#!/usr/bin/env bash
# Install and start what the full test suite needs beyond Python: Debian's Chromium (browser
# tests) and a local PostgreSQL server (audit tests on PostgreSQL). Meant to be sourced:
# it exports MOE_APP_TEST_POSTGRES_URL and MOE_APP_REQUIRE_ALL_TESTS=1 so that a missing
# service fails the tests loudly instead of skipping them.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  echo "test-services: installing ${need[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# PostgreSQL: start the default cluster and create the test role and database.
pg_version=$(ls /etc/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | awk '{print $4}' | grep -q online; then
  pg_ctlcluster "$pg_version" main start
fi
for _ in $(seq 1 30); do
  su postgres -c "pg_isready -q" && break
  sleep 1
done
su postgres -c "pg_isready" >/dev/null || { echo "test-services: PostgreSQL did not start" >&2; exit 1; }
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='moe'\"" | grep -q 1 \
  || su postgres -c "psql -qc \"CREATE ROLE moe LOGIN PASSWORD 'moe' CREATEDB\""
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='moe_test'\"" | grep -q 1 \
  || su postgres -c "psql -qc \"CREATE DATABASE moe_test OWNER moe\""

export MOE_APP_TEST_POSTGRES_URL="postgresql+psycopg://moe:moe@127.0.0.1:5432/moe_test"
export MOE_APP_REQUIRE_ALL_TESTS=1
echo "test-services: chromium $(chromium --version 2>/dev/null | awk '{print $2}'), PostgreSQL $pg_version on 127.0.0.1:5432"
