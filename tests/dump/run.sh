#!/usr/bin/env bash
# pg_dump / pg_restore keep registrations, segments and memberships, and the
# restored database keeps working. Runs against the cluster of scripts/cluster.sh.
set -euo pipefail
cd "$(dirname "$0")"
PORT=${SEG_PORT:-54329}
OUT=${1:-/tmp/pg_segments_results/dump}
PSQL="psql -X -q -v ON_ERROR_STOP=1 -h /tmp -p $PORT -U postgres"
mkdir -p "$OUT"
$PSQL -c 'SET client_min_messages = warning' -c 'DROP DATABASE IF EXISTS dump_src' -c 'DROP DATABASE IF EXISTS dump_dst' \
      -c 'CREATE DATABASE dump_src' -c 'CREATE DATABASE dump_dst' postgres
$PSQL -f setup.sql dump_src >/dev/null
$PSQL -f state.sql dump_src > "$OUT/before.txt"
pg_dump -h /tmp -p "$PORT" -U postgres -Fc -f "$OUT/dump.pgc" dump_src
pg_restore -h /tmp -p "$PORT" -U postgres --exit-on-error -d dump_dst "$OUT/dump.pgc"
$PSQL -f state.sql dump_dst > "$OUT/after_restore.txt"
if ! diff -u "$OUT/before.txt" "$OUT/after_restore.txt"; then
  echo "dump/restore changed the pg_segments state"; exit 1
fi
$PSQL -f after.sql dump_src > "$OUT/src_after.txt"
$PSQL -f after.sql dump_dst > "$OUT/dst_after.txt"
if ! diff -u "$OUT/src_after.txt" "$OUT/dst_after.txt"; then
  echo "the restored database behaves differently"; exit 1
fi
grep -q 'new_id' "$OUT/dst_after.txt" || { echo "no segment created after restore"; exit 1; }
# One table (pg_dump -t) into a database where it is not registered: the
# triggers it carries must leave it writable, and registering it again works.
$PSQL -c 'SET client_min_messages = warning' -c 'DROP DATABASE IF EXISTS dump_one' -c 'CREATE DATABASE dump_one' postgres
$PSQL -c 'CREATE EXTENSION pg_segments' -c 'CREATE SCHEMA crm' dump_one
pg_dump -h /tmp -p "$PORT" -U postgres -t crm.contacts -f "$OUT/contacts.sql" dump_src
$PSQL -f "$OUT/contacts.sql" dump_one >/dev/null
$PSQL -f ../pg_regress/sql/exact_helper.psql dump_one
one=$($PSQL -At \
  -c "DELETE FROM crm.contacts WHERE id = 1" -c "UPDATE crm.contacts SET id = id + 1000 WHERE id = 2" \
  -c "INSERT INTO crm.contacts (id, country, score) VALUES (5000, 'DE', 99)" \
  -c "SELECT segments.register_source('crm.contacts')" \
  -c "SELECT segments.create_segment('high', 'score > 50') > 0" \
  -c "DELETE FROM crm.contacts WHERE id = 5000" -c "TRUNCATE crm.contacts" \
  -c "INSERT INTO crm.contacts (id, country, score) VALUES (1, 'DE', 70), (2, 'BR', 10)" \
  -c "SELECT string_agg(segment || ':' || exact, ',') FROM public.exact('crm.contacts')" dump_one 2>&1) || true
if [ "$(echo "$one" | tail -1)" != "high:true" ]; then
  echo "a single-table dump does not restore into a working table:"; echo "$one"; exit 1
fi
$PSQL -c 'DROP DATABASE dump_src' -c 'DROP DATABASE dump_dst' -c 'DROP DATABASE dump_one' postgres
echo "dump/restore: 2 passed, 0 failed"
