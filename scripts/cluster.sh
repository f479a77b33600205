#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster owned by the `postgres` user (initdb
# refuses root), on a port other than 5432, with its socket in /tmp.
#   scripts/cluster.sh start | stop | status
# Environment: SEG_PORT (default 54329), SEG_PGDATA (default /tmp/pg_segments_$SEG_PORT),
# SEG_SWEEP_DB / SEG_SWEEP_INTERVAL: the database the background sweeper
# works on and how often (default: the isolation tests' database, every second).
set -euo pipefail
PGBIN=$(pg_config --bindir)
PORT=${SEG_PORT:-54329}
DATA=${SEG_PGDATA:-/tmp/pg_segments_$PORT}
LOG=$DATA.log
LIB=$DATA.lib

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"; else sudo -u postgres -- "$@"; fi
}

case "${1:-}" in
  start)
    if [ -f "$DATA/postmaster.pid" ] && as_postgres "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
      echo "cluster already running on port $PORT ($DATA)"; exit 0
    fi
    rm -rf "$DATA" "$LIB"
    mkdir -p "$DATA" "$LIB" && chown postgres "$DATA"
    # The cluster loads its own copy of the library (found first through
    # dynamic_library_path: the control file names the module without
    # $libdir), so that installing a new build while it runs never changes
    # what its backends load: a backend that loaded two builds crashes.
    cp "$(pg_config --pkglibdir)/pg_segments.so" "$LIB/"
    as_postgres "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust --no-sync >/dev/null
    cat >> "$DATA/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '/tmp'
fsync = off
synchronous_commit = off
full_page_writes = off
max_prepared_transactions = 10
shared_preload_libraries = 'pg_segments'
dynamic_library_path = '$LIB:\$libdir'
segments.sweep_database = '${SEG_SWEEP_DB:-isolation_regression}'
segments.sweep_interval = ${SEG_SWEEP_INTERVAL:-1}
CONF
    touch "$LOG" && chown postgres "$LOG"
    as_postgres "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -w start >/dev/null
    echo "cluster running on port $PORT (socket /tmp, data $DATA)"
    ;;
  stop)
    if [ -d "$DATA" ]; then as_postgres "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true; fi
    rm -rf "$DATA" "$LOG" "$LIB"
    ;;
  status)
    as_postgres "$PGBIN/pg_ctl" -D "$DATA" status
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2; exit 2
    ;;
esac
