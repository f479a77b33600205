#!/usr/bin/env bash
# Cluster-level tests of production life (SPEC §6), each on throwaway
# clusters of scripts/cluster.sh:
#   standby  a hot standby made with pg_basebackup: every reading function
#            and view works there, and shows what the primary wrote;
#   crash    the postmaster killed (kill -9) while six clients write: after
#            crash recovery every segment and count equals a fresh evaluation.
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
rm -rf "$out" && mkdir -p "$out" && chmod 777 "$out"
as_postgres() { if [ "$(id -un)" = postgres ]; then "$@"; else sudo -u postgres -- "$@"; fi; }
psql_on() { local p=$1; shift; psql -X -q -At -v ON_ERROR_STOP=1 -h /tmp -p "$p" -U postgres "$@"; }
cleanup() {
  as_postgres "$PGBIN/pg_ctl" -D "$STANDBY" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$STANDBY"
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
exit $status
