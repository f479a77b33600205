#!/usr/bin/env bash
# Single-row UPDATE throughput with pg_segments maintenance against the same
# table with its segment triggers disabled, in one run, interleaved, 3
# repetitions, medians. Reports ratios (with / without). Not a test.
#   bench/write_path.sh [segments=10] [contacts=100000] [seconds=10]
set -euo pipefail
SEGMENTS=${1:-10}; CONTACTS=${2:-100000}; SECONDS_PER_RUN=${3:-10}
PORT=${SEG_PORT:-54329}
PSQL="psql -X -q -v ON_ERROR_STOP=1 -h /tmp -p $PORT -U postgres"
DB=bench_write
$PSQL -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" postgres
$PSQL $DB <<SQL
SET client_min_messages = warning;
CREATE EXTENSION pg_segments;
CREATE TABLE contacts (id bigint PRIMARY KEY, country text, score int, plan text, note text);
INSERT INTO contacts SELECT i, (ARRAY['DE','BR','AT','US'])[1 + i % 4], i % 100, (ARRAY['free','pro'])[1 + i % 2], 'x'
  FROM generate_series(1, $CONTACTS) i;
SELECT segments.register_source('contacts');
SELECT segments.create_segment('s' || i, format('score > %s AND country IN (''DE'', ''AT'') OR plan = ''pro'' AND score < %s', i, i))
  FROM generate_series(1, $SEGMENTS) i;
VACUUM ANALYZE;
SQL
cat > /tmp/bench_used.sql <<SQL
\set id random(1, $CONTACTS)
UPDATE contacts SET score = (score + 1) % 100 WHERE id = :id;
SQL
cat > /tmp/bench_unused.sql <<SQL
\set id random(1, $CONTACTS)
UPDATE contacts SET note = md5(:id::text) WHERE id = :id;
SQL
tps() { pgbench -n -h /tmp -p "$PORT" -U postgres -c "$1" -j "$1" -T "$SECONDS_PER_RUN" -f "$2" $DB 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p'; }
median() { printf '%s\n' "$@" | sort -n | sed -n '2p'; }
for workload in used unused; do
  for clients in 1 2; do
    with=(); without=()
    for rep in 1 2 3; do
      $PSQL -c "ALTER TABLE contacts ENABLE TRIGGER USER" $DB
      with+=("$(tps "$clients" /tmp/bench_$workload.sql)")
      $PSQL -c "ALTER TABLE contacts DISABLE TRIGGER USER" $DB
      without+=("$(tps "$clients" /tmp/bench_$workload.sql)")
    done
    w=$(median "${with[@]}"); p=$(median "${without[@]}")
    printf '%-7s column, %d client(s), %3d segments: %8.0f tps with, %8.0f tps plain, ratio %.2f\n' \
      "$workload" "$clients" "$SEGMENTS" "$w" "$p" "$(echo "$w / $p" | bc -l)"
  done
done
$PSQL -c "ALTER TABLE contacts ENABLE TRIGGER USER" $DB
