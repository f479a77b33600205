#!/usr/bin/env bash
# make bench: pg_segments side by side with the plain table, in one run,
# interleaved, 3 repetitions, medians; writes BENCHMARKS.md. Not a test.
#   BENCH_CONTACTS (default 1000000), BENCH_SECONDS per pgbench run (default 10)
# Covers workloads 2, 4, 5, 6 and 8 of the benchmark issue; the others and the
# alternative variants (PL/pgSQL triggers, materialized views) are not built yet.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${BENCH_CONTACTS:-1000000}
T=${BENCH_SECONDS:-10}
PORT=${SEG_PORT:-54329}
DB=bench
PSQL="psql -X -q -A -t -v ON_ERROR_STOP=1 -h /tmp -p $PORT -U postgres"
OUT=BENCHMARKS.md
RES=$(mktemp)

median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
ratio() { echo "scale=2; $1 / $2" | bc -l | sed 's/^\./0./'; }
tps() { pgbench -n -h /tmp -p "$PORT" -U postgres -c "$1" -j "$1" -T "$T" -f "$2" $DB 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p'; }
# Milliseconds of one SQL statement, measured inside the server.
ms() {
  $PSQL $DB -c "DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN $1; RAISE NOTICE 'ms=%', round(extract(epoch FROM clock_timestamp() - t0) * 1000, 2); END \$\$" 2>&1 \
    | sed -n 's/.*ms=\([0-9.]*\).*/\1/p'
}
row() { echo "| $* |" >> "$RES"; }

echo "==> loading $N contacts"
$PSQL postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
$PSQL $DB <<SQL
SET client_min_messages = warning;
CREATE EXTENSION pg_segments;
CREATE TABLE contacts (id bigint PRIMARY KEY, country text, score int, plan text, note text, created_at timestamptz);
INSERT INTO contacts SELECT i, (ARRAY['DE','BR','AT','US'])[1 + i % 4], i % 100, (ARRAY['free','pro'])[1 + i % 2], 'x',
       now() - (i % 1000) * interval '1 hour' FROM generate_series(1, $N) i;
CREATE INDEX ON contacts (created_at);
VACUUM ANALYZE contacts;
SELECT segments.register_source('contacts');
SQL

# --- Workload 2: single-row UPDATE, used / unused column, 0, 10, 100 segments
cat > /tmp/bench_used.sql <<SQL
\set id random(1, $N)
UPDATE contacts SET score = (score + 1) % 100 WHERE id = :id;
SQL
cat > /tmp/bench_unused.sql <<SQL
\set id random(1, $N)
UPDATE contacts SET note = md5(:id::text) WHERE id = :id;
SQL
echo "| workload | segments | clients | pg_segments tps | plain tps | ratio | target |" > "$RES"
echo "|---|---|---|---|---|---|---|" >> "$RES"
have=0
for S in 0 10 100; do
  if [ "$S" -gt "$have" ]; then
    $PSQL $DB -c "SELECT count(segments.create_segment('w2_' || i, format('score > %s AND country IN (''DE'', ''AT'') OR plan = ''pro'' AND score < %s', i % 100, i % 100))) FROM generate_series($((have + 1)), $S) i" >/dev/null
    have=$S
  fi
  for w in used unused; do
    for c in 1 2; do
      with=(); plain=()
      for rep in 1 2 3; do
        $PSQL $DB -c "ALTER TABLE contacts ENABLE TRIGGER USER"
        with+=("$(tps "$c" /tmp/bench_$w.sql)")
        $PSQL $DB -c "ALTER TABLE contacts DISABLE TRIGGER USER"
        plain+=("$(tps "$c" /tmp/bench_$w.sql)")
      done
      $PSQL $DB -c "ALTER TABLE contacts ENABLE TRIGGER USER"
      a=$(median "${with[@]}"); b=$(median "${plain[@]}")
      target="—"
      [ "$w" = used ] && [ "$S" = 10 ] && target="≥ 0.8"
      [ "$w" = used ] && [ "$S" = 100 ] && target="≥ 0.5"
      [ "$w" = unused ] && target="≥ 0.95"
      row "2: UPDATE $w column | $S | $c | $a | $b | $(ratio "$a" "$b") | $target"
      echo "   $w column, $S segments, $c client(s): $a vs $b tps"
    done
  done
done

# --- Workload 5: create_segment over all contacts vs the equivalent INSERT … SELECT
$PSQL $DB -c "CREATE TABLE plain_membership (segment_id bigint, id bigint, entered_at timestamptz DEFAULT now(), PRIMARY KEY (segment_id, id)); CREATE INDEX ON plain_membership (id)"
seg=(); ins=()
for rep in 1 2 3; do
  seg+=("$(ms "PERFORM segments.create_segment('w5_$rep', 'score < 50')")")
  ins+=("$(ms "INSERT INTO plain_membership (segment_id, id) SELECT $rep, c.id FROM contacts c WHERE c.score < 50")")
done
a=$(median "${seg[@]}"); b=$(median "${ins[@]}")
row "5: create_segment (score < 50) | — | 1 | $a ms | $b ms | $(ratio "$a" "$b") (time) | ≤ 1.2"

# --- Workload 4: reads against the same lookups on the plain table
cat > /tmp/bench_is_member.sql <<SQL
\set id random(1, $N)
SELECT segments.is_member('w5_1', :id::bigint);
SQL
cat > /tmp/bench_plain_member.sql <<SQL
\set id random(1, $N)
SELECT EXISTS (SELECT FROM plain_membership WHERE segment_id = 1 AND id = :id);
SQL
cat > /tmp/bench_segments_of.sql <<SQL
\set id random(1, $N)
SELECT segments.segments_of(:id::bigint);
SQL
cat > /tmp/bench_plain_of.sql <<SQL
\set id random(1, $N)
SELECT segment_id FROM plain_membership WHERE id = :id;
SQL
cat > /tmp/bench_count.sql <<SQL
SELECT segments.member_count('w5_1');
SQL
cat > /tmp/bench_plain_count.sql <<SQL
SELECT count(*) FROM plain_membership WHERE segment_id = 1;
SQL
for pair in "is_member:is_member:plain_member" "segments_of:segments_of:plain_of" "member_count:count:plain_count"; do
  IFS=: read -r label a_f b_f <<< "$pair"
  with=(); plain=()
  for rep in 1 2 3; do
    with+=("$(tps 1 /tmp/bench_$a_f.sql)"); plain+=("$(tps 1 /tmp/bench_$b_f.sql)")
  done
  a=$(median "${with[@]}"); b=$(median "${plain[@]}")
  row "4: $label | — | 1 | $a | $b | $(ratio "$a" "$b") | ≥ 0.83 (within 1.2×)"
done

# --- Workload 6: refresh_due() with 0, 1,000 and 10,000 contacts crossing
$PSQL $DB -c "SELECT segments.create_segment('w6', 'created_at WITHIN LAST 1 day')" >/dev/null
for K in 0 1000 10000; do
  times=()
  for rep in 1 2 3; do
    # Put K contacts just across the boundary since a sweep one minute ago.
    $PSQL $DB -c "UPDATE segments.segment_def SET swept_at = now() - interval '1 minute' WHERE name = 'w6';
                  UPDATE contacts SET created_at = CASE WHEN id <= $K THEN now() - interval '1 day' + interval '1 second' * (random() * 30 - 45)
                                                        ELSE now() - interval '10 days' END
                   WHERE id <= 20000 AND (id <= $K OR created_at > now() - interval '2 days')"
    times+=("$(ms "PERFORM segments.refresh_due()")")
  done
  t=$(median "${times[@]}")
  target="—"; [ "$K" = 0 ] && target="< 10 ms"
  row "6: refresh_due, $K crossing | 1 | 1 | $t ms | — | — | $target"
done

# --- Workload 8: compiling a 1,000-condition definition
def=$(for i in $(seq 1 1000); do printf "score = %d OR " "$i"; done | sed 's/ OR $//')
times=()
for rep in 1 2 3 4 5; do times+=("$(ms "PERFORM segments.explain('$def', 'contacts')")"); done
row "8: compile 1,000 conditions | — | 1 | $(median "${times[@]}") ms | — | — | < 5 ms"

{
  echo "# Benchmarks"
  echo
  echo "Written by \`make bench\` on $(date -u +%Y-%m-%d): $N contacts, pgbench runs of ${T}s, 3 repetitions"
  echo "interleaved with the plain variant, medians. Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB,"
  echo "$(psql -X -A -t -h /tmp -p "$PORT" -U postgres -c 'SELECT version()' postgres | cut -d, -f1)."
  echo
  echo "\"plain\" is the same table with pg_segments' triggers disabled (workload 2), the same lookups on a"
  echo "plain membership table with the same indexes (workload 4), or the equivalent INSERT … SELECT"
  echo "(workload 5). Ratios above 1 are better for tps, below 1 better for times."
  echo
  cat "$RES"
  echo
  echo "Not measured yet: workloads 1 (bulk load), 3 (event inserts), 7 (bulk UPDATE/DELETE), peak"
  echo "memory, and the alternative variants (per-segment PL/pgSQL triggers, one statement trigger,"
  echo "materialized views)."
} > "$OUT"
rm -f "$RES"
echo "==> wrote $OUT"
