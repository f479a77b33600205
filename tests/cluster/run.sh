#!/usr/bin/env bash
# Cluster-level tests of production life (SPEC §6), each on throwaway
# clusters of scripts/cluster.sh:
#   standby  a hot standby made with pg_basebackup: every reading function
#            and view works there, and shows what the primary wrote;
#   crash    the postmaster killed (kill -9) while six clients write: after
#            crash recovery every segment and count equals a fresh evaluation;
#   subscriber  a logical subscriber of a FOR ALL TABLES publication, its
#            sweeper running: after the publisher's writes, segment changes
#            and sweeps, it holds the publisher's memberships and counts,
#            every segment exact, its caches following the applied catalog,
#            and it refuses to change segments itself (25006).
#   tests/cluster/run.sh RESULTS-DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-/tmp/pg_segments_results/cluster}
PORT=${SEG_PORT:-54339}
SPORT=$((PORT + 1))
PGBIN=$(pg_config --bindir)
DATA=/tmp/pg_segments_$PORT
STANDBY=/tmp/pg_segments_${PORT}_standby
SUB=$((PORT + 2))
rm -rf "$out" && mkdir -p "$out" && chmod 777 "$out"
as_postgres() { if [ "$(id -un)" = postgres ]; then "$@"; else sudo -u postgres -- "$@"; fi; }
psql_on() { local p=$1; shift; psql -X -q -At -v ON_ERROR_STOP=1 -h /tmp -p "$p" -U postgres "$@"; }
cleanup() {
  as_postgres "$PGBIN/pg_ctl" -D "$STANDBY" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$STANDBY"
  SEG_PORT=$SUB bash "$root/scripts/cluster.sh" stop >/dev/null 2>&1 || true
  bash "$root/scripts/cluster.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
status=0

# --- standby
bash "$root/scripts/cluster.sh" start >/dev/null
psql_on "$PORT" -c "CREATE DATABASE race" postgres
psql_on "$PORT" -f "$here/../race/setup.sql" race >/dev/null
as_postgres "$PGBIN/pg_basebackup" -h /tmp -p "$PORT" -U postgres -D "$STANDBY" -R -X stream >/dev/null
echo "port = $SPORT" | as_postgres tee -a "$STANDBY/postgresql.auto.conf" >/dev/null
as_postgres "$PGBIN/pg_ctl" -D "$STANDBY" -l "$out/standby.log" -w start >/dev/null
# Written after the base backup: the standby must replay it.
psql_on "$PORT" -c "UPDATE r_companies SET country = 'DE' WHERE id = 2" -c "INSERT INTO r_contacts VALUES (901, 2, 7, 'DE')" race
# (synchronous_commit is off on these clusters: the commit may not be
# written yet, so wait for the insert position, not the write position)
lsn=$(psql_on "$PORT" -c "SELECT pg_current_wal_insert_lsn()" race)
for _ in $(seq 1 100); do
  [ "$(psql_on "$SPORT" -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'" race)" = t ] && break
  sleep 0.1
done
read_all="SELECT segments.member_count('German company'), segments.is_member('German company', 901::bigint),
                 (SELECT count(*) FROM segments.segments_of(901::bigint)), (SELECT count(*) FROM segments.members),
                 (SELECT sum(member_count) FROM segments.segment)"
primary=$(psql_on "$PORT" -c "$read_all" race)
if standby=$(psql_on "$SPORT" -c "$read_all" race 2>"$out/standby_error.txt"); then
  if [ "$standby" = "$primary" ]; then
    echo "standby: every reading function and view works, as on the primary ($standby)"
  else
    echo "standby: reads differ from the primary: $standby vs $primary"; status=1
  fi
else
  echo "standby: reading failed: $(cat "$out/standby_error.txt")"; status=1
fi
as_postgres "$PGBIN/pg_ctl" -D "$STANDBY" -m fast -w stop >/dev/null
rm -rf "$STANDBY"

# --- crash
scripts=()
for f in "$here"/../race/scripts/*.sql; do scripts+=(-f "$f@1"); done
pgbench -n -h /tmp -p "$PORT" -U postgres -c 6 -j 6 -T 20 "${scripts[@]}" race >"$out/pgbench_crash.log" 2>&1 &
bench=$!
sleep 4
kill -9 "$(head -1 "$DATA/postmaster.pid")"
wait "$bench" || true
# The killed postmaster's backends leave on their own; until then the
# shared memory is in use and a new postmaster refuses to start.
for _ in $(seq 1 50); do
  as_postgres "$PGBIN/pg_ctl" -D "$DATA" -l "$DATA.log" -w start >/dev/null 2>&1 && break
  sleep 0.2
done
psql_on "$PORT" -f "$here/../pg_regress/sql/exact_helper.psql" race
wrong=$(psql_on "$PORT" -c "SELECT string_agg(segment, ', ') FROM public.exact('r_contacts') WHERE NOT exact" race)
recovered=$(grep -c "database system was interrupted\|redo done\|redo starts" "$DATA.log" || true)
if [ -n "$wrong" ]; then
  echo "crash: not exact after recovery: $wrong"; status=1
elif [ "$recovered" = 0 ]; then
  echo "crash: the server did not go through crash recovery (see $DATA.log)"; status=1
else
  echo "crash: every segment and count exact after crash recovery"
fi

# --- subscriber
psql_on "$PORT" -c "ALTER SYSTEM SET wal_level = logical" -c "ALTER SYSTEM SET segments.sweep_database = 'pub'" postgres
as_postgres "$PGBIN/pg_ctl" -D "$DATA" -l "$DATA.log" -w restart >/dev/null
psql_on "$PORT" -c "CREATE DATABASE pub" postgres
psql_on "$PORT" -f "$here/../race/setup.sql" pub >/dev/null
psql_on "$PORT" pub >/dev/null <<'SQL'
ALTER TABLE r_events ADD COLUMN at timestamptz NOT NULL DEFAULT now();
SELECT segments.create_segment('Recently active', 'ANY events (at WITHIN LAST 3 seconds)');
SELECT segments.create_segment('First ten', 'score > 100');
CREATE PUBLICATION p FOR ALL TABLES;
SQL
SEG_PORT=$SUB SEG_SWEEP_DB=pub bash "$root/scripts/cluster.sh" start >/dev/null
psql_on "$SUB" -c "CREATE DATABASE pub" postgres
"$PGBIN/pg_dump" -h /tmp -p "$PORT" -U postgres --schema-only --no-publications --no-subscriptions pub | psql_on "$SUB" pub >/dev/null
psql_on "$SUB" -c "CREATE SUBSCRIPTION s CONNECTION 'host=/tmp port=$PORT dbname=pub user=postgres' PUBLICATION p" pub 2>/dev/null
psql_on "$PORT" -f "$here/../pg_regress/sql/exact_helper.psql" pub
psql_on "$SUB" -f "$here/../pg_regress/sql/exact_helper.psql" pub
# What the subscriber must hold once it caught up: the publisher's segments,
# counts and memberships.
state="SELECT (SELECT string_agg(name || '=' || member_count, ', ' ORDER BY name) FROM segments.segment),
              (SELECT md5(string_agg(segment_id || '/' || key, ',' ORDER BY segment_id, key)) FROM segments.members)"
caught_up() {
  local want; want=$(psql_on "$PORT" -c "$state" pub)
  for _ in $(seq 1 300); do
    [ "$(psql_on "$SUB" -c "$state" pub)" = "$want" ] && return 0
    sleep 0.2
  done
  echo "subscriber: never caught up: $(psql_on "$SUB" -c "$state" pub) vs $want"; return 1
}
caught_up || status=1
# A session of the subscriber that resolved a segment's name before the
# publisher dropped it and created it again must find the new one.
coproc reader { psql -X -q -At -h /tmp -p "$SUB" -U postgres pub 2>&1; }
echo "SELECT segments.is_member('First ten', 2::bigint);" >&"${reader[1]}"
read -r before <&"${reader[0]}"
psql_on "$PORT" -c "SELECT segments.drop_segment('First ten')" -c "SELECT segments.create_segment('First ten', 'id <= 10')" pub >/dev/null
caught_up || status=1
echo "SELECT segments.is_member('First ten', 2::bigint);" >&"${reader[1]}"
read -r after <&"${reader[0]}"
eval "exec ${reader[1]}>&-"
if [ "$before/$after" = "f/t" ]; then
  echo "subscriber: a session's segment names follow the catalog the subscription applies"
else
  echo "subscriber: is_member before and after the segment was created again: $before, $after (want f, t)"; status=1
fi
# The publisher writes, its triggers and sweeps change memberships; the
# subscriber's own sweeper runs meanwhile (SEG_SWEEP_DB) and must leave them alone.
pgbench -n -h /tmp -p "$PORT" -U postgres -c 4 -j 4 -T 8 "${scripts[@]}" pub >"$out/pgbench_publisher.log" 2>&1
sleep 4
psql_on "$PORT" -c "SELECT segments.refresh_due()" pub >/dev/null
if caught_up; then
  wrong=$(psql_on "$SUB" -c "SELECT string_agg(segment, ', ') FROM public.exact('r_contacts') WHERE NOT exact" pub)
  if [ -n "$wrong" ]; then
    echo "subscriber: not exact: $wrong"; status=1
    psql_on "$PORT" pub -c "SELECT d.swept_at, d.refreshed_at, now() FROM segments.segment_def d WHERE d.name = 'Recently active'" -c "
      SELECT m.key, (SELECT max(at) FROM r_events e WHERE e.contact_id::text = m.key), m.entered_at FROM segments.members m JOIN segments.segment s ON s.id = m.segment_id WHERE s.name = 'Recently active'"
  else
    echo "subscriber: memberships and counts equal the publisher's, every segment exact"
  fi
else
  status=1
fi
refused=$(psql_on "$SUB" -v VERBOSITY=sqlstate -c "SELECT segments.create_segment('Local copy', 'score > 1')" pub 2>&1 || true)
if [ "$refused" = "ERROR:  25006" ] && [ "$(psql_on "$SUB" -c "SELECT count(*) FROM segments.segment_def WHERE name = 'Local copy'" pub)" = 0 ]; then
  echo "subscriber: changing segments there is refused (25006)"
else
  echo "subscriber: create_segment answered: $refused"; status=1
fi
applied=$(grep "ERROR" "/tmp/pg_segments_$SUB.log" | grep -v "replicated by subscription" || true)
if [ -n "$applied" ]; then
  echo "subscriber: errors in its log:"; echo "$applied" | head -5; status=1
fi
exit $status
