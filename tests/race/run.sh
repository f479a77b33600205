#!/usr/bin/env bash
# The race test: several clients write random rows through every path that
# meets another transaction's uncommitted rows (lookup rows changed while
# contacts pointing at them are inserted and re-pointed, contacts inserted
# while their events are, upserts, deletes, multi-statement transactions),
# under READ COMMITTED and then REPEATABLE READ; afterwards every active
# segment must equal a fresh evaluation of its filter, with an exact count.
# Deadlocks and serialization failures are retried (pgbench --max-tries):
# any other error fails the test, and so does a wrong membership.
#   tests/race/run.sh RESULTS-DIR   (the cluster of scripts/cluster.sh runs)
# RACE_SECONDS (default 15) per isolation level, RACE_CLIENTS (default 6).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-/tmp/pg_segments_results/race}
PORT=${SEG_PORT:-54329}
DB=race
SECONDS_EACH=${RACE_SECONDS:-15}
CLIENTS=${RACE_CLIENTS:-6}
psql() { command psql -X -q -v ON_ERROR_STOP=1 -h /tmp -p "$PORT" -U postgres "$@"; }
rm -rf "$out" && mkdir -p "$out"

psql -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" postgres
psql -f "$here/setup.sql" $DB >/dev/null
psql -f "$here/../pg_regress/sql/exact_helper.psql" $DB

scripts=()
for f in "$here"/scripts/*.sql; do
  case $(basename "$f") in
    transaction.sql) scripts+=(-f "$f@2") ;;
    *) scripts+=(-f "$f@1") ;;
  esac
done

status=0
for level in "read committed" "repeatable read"; do
  log="$out/pgbench_${level// /_}.log"
  if ! PGOPTIONS="-c default_transaction_isolation=${level// /\\ }" \
       pgbench -n -h /tmp -p "$PORT" -U postgres -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_EACH" \
               --max-tries=50 --failures-detailed "${scripts[@]}" $DB >"$log" 2>&1; then
    echo "race ($level): pgbench failed (an error other than a deadlock or serialization failure):"
    grep -v "^pgbench: error: client .* script .* aborted in command .* query .*: ERROR:  \(could not serialize\|deadlock\)" "$log" | tail -20
    status=1
  fi
  summary=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1 transactions/p;
                     s/^number of failed transactions: \([0-9]*\).*/\1 failed/p;
                     s/^number of serialization failures: \([0-9]*\).*/\1 serialization failures/p;
                     s/^number of deadlock failures: \([0-9]*\).*/\1 deadlock failures/p;
                     s/^number of transactions retried: \([0-9]*\).*/\1 retried/p' "$log" | paste -sd, -)
  wrong=$(psql -At -c "SELECT string_agg(segment, ', ') FROM public.exact('r_contacts') WHERE NOT exact" $DB)
  if [ -n "$wrong" ]; then
    echo "race ($level): not exact after the run: $wrong ($summary)"
    status=1
  else
    echo "race ($level): every segment exact ($summary)"
  fi
done
exit $status
