# pg_segments — the two commands a newcomer needs:
#   make demo   installs what is missing, builds, starts a throwaway cluster and shows the language at work
#   make test   every test tier: unit (no server), in-database (pgrx), pg_regress, isolation
PG_CONFIG ?= /usr/bin/pg_config
PGXS      := $(shell $(PG_CONFIG) --pkglibdir 2>/dev/null)/pgxs/src/test
PORT      ?= 54329
PSQL      := psql -X -h /tmp -p $(PORT) -U postgres
RESULTS   := /tmp/pg_segments_results

export SEG_PORT := $(PORT)

.PHONY: all deps install unit pgrx-test regress isolation dump test demo demo-stop clean

all: install

deps:
	@bash scripts/deps.sh

install: deps
	cargo pgrx install --pg-config $(PG_CONFIG)

unit:
	cargo test --lib

pgrx-test: deps
	rm -rf /tmp/pg_segments_pgrx
	cargo pgrx test pg15 --runas postgres --pgdata /tmp/pg_segments_pgrx

# pg_regress and pg_isolation_regress run against a throwaway cluster; their
# output goes to $(RESULTS) so the tree stays clean.
regress: install
	@bash scripts/cluster.sh start
	@$(PSQL) -qc 'DROP DATABASE IF EXISTS regression' -c 'CREATE DATABASE regression' postgres
	@rm -rf $(RESULTS)/regress && mkdir -p $(RESULTS)/regress && chmod -R 777 $(RESULTS)
	$(PGXS)/regress/pg_regress --use-existing --host=/tmp --port=$(PORT) --user=postgres \
	  --inputdir=tests/pg_regress --outputdir=$(RESULTS)/regress --dbname=regression \
	  $$(ls tests/pg_regress/sql | sed -n 's/\.sql$$//p' | sort) \
	  || { cat $(RESULTS)/regress/regression.diffs; bash scripts/cluster.sh stop; exit 1; }
	@bash scripts/cluster.sh stop

isolation: install
	@bash scripts/cluster.sh start
	@$(PSQL) -qc 'DROP DATABASE IF EXISTS isolation_regression WITH (FORCE)' -c 'CREATE DATABASE isolation_regression' postgres
	@rm -rf $(RESULTS)/isolation && mkdir -p $(RESULTS)/isolation && chmod -R 777 $(RESULTS)
	$(PGXS)/isolation/pg_isolation_regress --use-existing --host=/tmp --port=$(PORT) --user=postgres \
	  --inputdir=tests/isolation --outputdir=$(RESULTS)/isolation --dbname=isolation_regression \
	  $$(ls tests/isolation/specs | sed -n 's/\.spec$$//p' | sort) \
	  || { cat $(RESULTS)/isolation/regression.diffs; bash scripts/cluster.sh stop; exit 1; }
	@bash scripts/cluster.sh stop

# pg_dump / pg_restore keep registrations, segments and memberships.
dump: install
	@bash scripts/cluster.sh start
	@bash tests/dump/run.sh $(RESULTS)/dump || { bash scripts/cluster.sh stop; exit 1; }
	@bash scripts/cluster.sh stop

test: unit pgrx-test regress isolation dump
	@echo "make test: all tiers passed (unit, in-database, pg_regress, isolation, dump/restore)"

demo: install
	@SEG_SWEEP_DB=demo SEG_SWEEP_INTERVAL=60 bash scripts/cluster.sh start
	@$(PSQL) -q -v ON_ERROR_STOP=1 -f demo/demo.sql postgres
	@echo
	@echo "The demo cluster keeps running. Explore it with:"
	@echo "  psql -h /tmp -p $(PORT) -U postgres demo"
	@echo "Stop it with: make demo-stop"

demo-stop:
	@bash scripts/cluster.sh stop

clean:
	cargo clean
	rm -rf $(RESULTS)
