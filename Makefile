# pg_segments — the two commands a newcomer needs:
#   make demo   installs what is missing, builds, starts a throwaway cluster and shows the language at work
#   make test   every test tier: language (no server), in-database (pgrx), pg_regress, isolation, dump, race, cluster
PG_CONFIG ?= /usr/bin/pg_config
PGXS      := $(shell $(PG_CONFIG) --pkglibdir 2>/dev/null)/pgxs/src/test
# The test tiers' throwaway clusters and the demo's long-lived one use
# different ports, so that `make test` never touches a running demo.
PORT      ?= 54339
DEMO_PORT ?= 54329
PSQL      := psql -X -h /tmp -p $(PORT) -U postgres
RESULTS   := /tmp/pg_segments_results

export SEG_PORT := $(PORT)

.PHONY: all deps install unit pgrx-test regress isolation dump race cluster test bench demo demo-stop clean

all: install

deps:
	@bash scripts/deps.sh

install: deps
	cargo pgrx install --pg-config $(PG_CONFIG)

# The language crate's own tests: no PostgreSQL needed.
unit:
	cargo test -p segments_lang

pgrx-test: deps
	rm -rf /tmp/pg_segments_pgrx
	cargo pgrx test pg15 --runas postgres --pgdata /tmp/pg_segments_pgrx

# pg_regress and pg_isolation_regress run against a throwaway cluster; their
# output goes to $(RESULTS) so the tree stays clean.
# $(call suite,runner,name,database,inputdir,tests)
define suite
	@bash scripts/cluster.sh start
	@$(PSQL) -qc 'DROP DATABASE IF EXISTS $(3) WITH (FORCE)' -c 'CREATE DATABASE $(3)' postgres
	@rm -rf $(RESULTS)/$(2) && mkdir -p $(RESULTS)/$(2) && chmod -R 777 $(RESULTS)
	$(1) --use-existing --host=/tmp --port=$(PORT) --user=postgres \
	  --inputdir=$(4) --outputdir=$(RESULTS)/$(2) --dbname=$(3) $(5) \
	  || { cat $(RESULTS)/$(2)/regression.diffs; bash scripts/cluster.sh stop; exit 1; }
	@bash scripts/cluster.sh stop
endef

REGRESS_TESTS   = $(sort $(basename $(notdir $(wildcard tests/pg_regress/sql/*.sql))))
ISOLATION_TESTS = $(sort $(basename $(notdir $(wildcard tests/isolation/specs/*.spec))))

regress: install
	$(call suite,$(PGXS)/regress/pg_regress,regress,regression,tests/pg_regress,$(REGRESS_TESTS))

isolation: install
	$(call suite,$(PGXS)/isolation/pg_isolation_regress,isolation,isolation_regression,tests/isolation,$(ISOLATION_TESTS))

# pg_dump / pg_restore keep registrations, segments and memberships.
dump: install
	@bash scripts/cluster.sh start
	@bash tests/dump/run.sh $(RESULTS)/dump || { bash scripts/cluster.sh stop; exit 1; }
	@bash scripts/cluster.sh stop

# Several clients writing at once, then every segment against a fresh
# evaluation (RACE_SECONDS per isolation level).
race: install
	@bash scripts/cluster.sh start
	@bash tests/race/run.sh $(RESULTS)/race || { bash scripts/cluster.sh stop; exit 1; }
	@bash scripts/cluster.sh stop

# A hot standby (pg_basebackup) and a crash (kill -9 under load).
cluster: install
	@bash tests/cluster/run.sh $(RESULTS)/cluster

test: unit pgrx-test regress isolation dump race cluster
	@echo "make test: all tiers passed (unit, in-database, pg_regress, isolation, dump/restore, race, cluster)"

# Not a test: numbers, written to BENCHMARKS.md (BENCH_CONTACTS, BENCH_SECONDS).
bench: deps
	cargo pgrx install --release --pg-config $(PG_CONFIG)
	@SEG_SWEEP_INTERVAL=86400 bash scripts/cluster.sh start
	@bash bench/run.sh || { bash scripts/cluster.sh stop; exit 1; }
	@bash scripts/cluster.sh stop

demo: install
	@SEG_PORT=$(DEMO_PORT) SEG_SWEEP_DB=demo SEG_SWEEP_INTERVAL=60 bash scripts/cluster.sh start
	@psql -X -h /tmp -p $(DEMO_PORT) -U postgres -q -v ON_ERROR_STOP=1 -f demo/demo.sql postgres
	@echo
	@echo "The demo cluster keeps running. Explore it with:"
	@echo "  psql -h /tmp -p $(DEMO_PORT) -U postgres demo"
	@echo "Stop it with: make demo-stop"

demo-stop:
	@SEG_PORT=$(DEMO_PORT) bash scripts/cluster.sh stop

clean:
	cargo clean
	rm -rf $(RESULTS)
