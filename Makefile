# Everyday commands. Configuration comes from the environment and from a .env
# file (copy .env.example; ENV_FILE=path for another): every command below runs
# through `python -m config.env_file`, which reads that file with python-dotenv
# (the environment wins), warns about keys no setting reads, and passes it on
# to the command and everything it starts. make itself does not parse it.
SHELL := /bin/bash
ifdef ENV_FILE
export ENV_FILE
endif

UV_VERSION ?= 0.13.9
UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
RUN := $(UV) run --frozen --no-sync python -m config.env_file --
# The .env check (a key no setting reads) once per make, not once per command.
ifneq (,$(wildcard .venv/.synced))
ifndef ENV_FILE_CHECKED
$(shell $(if $(ENV_FILE),ENV_FILE='$(ENV_FILE)') $(UV) run --frozen --no-sync python -m config.env_file --check >&2)
export ENV_FILE_CHECKED := 1
endif
endif
DBT := $(RUN) dbt --no-use-colors
DBT_ARGS := --project-dir dbt_project --profiles-dir profiles

.DEFAULT_GOAL := help
.PHONY: help install up down status run datagen load loaders dbt dbt-build dbt-changed dbt-state-save dbt-slim-ci airflow docs report \
	dashboards dashboards-down browser test test-e2e test-bench test-all lint format bench psql sql clean

# ${NAME:-default} in a target's help shows NAME's value (from .env or the
# environment, once the venv that reads .env is installed), else the default.
help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*##' $(firstword $(MAKEFILE_LIST)) \
		| $(if $(wildcard .venv/.synced),$(RUN)) awk -F':.*## ' '{ text = $$2; \
			while (match(text, /\$$\{[A-Z_]+:-[^}]*\}/)) { \
				split(substr(text, RSTART + 2, RLENGTH - 3), kv, ":-"); \
				value = (ENVIRON[kv[1]] != "") ? ENVIRON[kv[1]] : kv[2]; \
				text = substr(text, 1, RSTART - 1) value substr(text, RSTART + RLENGTH) } \
			printf "  make %-16s %s\n", $$1, text }'

$(UV):
	@echo "uv not found: installing it with pip (user site)"
	python3 -m pip install --user --quiet "uv==$(UV_VERSION)"

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode
	@touch $@

install: .venv/.synced ## create .venv with the locked dependencies (uv)

up: install ## start the embedded servers every source needs: PostgreSQL, MongoDB, sales API, Kafka, ClickHouse (EMBEDDED_SERVICES)
	$(RUN) python -m stack up

down: ## stop the embedded services
	-$(RUN) python -m stack down

status: install ## show which services are configured and whether they answer (exit 1 if one is down)
	@$(RUN) python -m stack status

run: install ## set up, generate the next day, load it, dbt build, print a summary
	$(RUN) python -m stack.run

datagen: up ## every simulated source system writes the next logical day (ARGS="--date D --days N --source S")
	$(RUN) python -m pipelines simulate $(ARGS)

load: up ## land what is new from every source into raw_* (ARGS="--date D --source S")
	$(RUN) python -m pipelines land $(ARGS)

loaders: up ## any loader command: make loaders ARGS="sales_api --date 2026-10-05 --days 7"
	$(RUN) python -m loaders $(or $(ARGS),--help)

# After dbt, its artifacts go to raw_ops (the ops models' history), whatever dbt's exit.
dbt: up ## any dbt command with the project's settings: make dbt ARGS="build -s review_mart"
	$(DBT) $(or $(ARGS),--help) $(DBT_ARGS); rc=$$?; $(RUN) python -m loaders.ops --dbt-args "$(ARGS)"; exit $$rc

dbt-build: up ## dbt build against the configured warehouse
	$(DBT) build $(DBT_ARGS); rc=$$?; $(RUN) python -m loaders.ops; exit $$rc

# Slim CI: build and test only what changed against the last good build's
# manifest (make run saves it), reading unchanged parents from that build.
dbt-changed: up ## build only models changed since the last good build (state:modified+, --defer)
	@state="$$($(RUN) python -c 'from config import DbtSettings; print(DbtSettings.from_env().state_dir)')" && \
	test -f "$$state/manifest.json" || { echo "no saved manifest in $$state: run make run (or copy production's manifest.json there) first" >&2; exit 1; }; \
	echo "dbt build --select state:modified+ --defer --state $$state"; \
	$(DBT) build --select state:modified+ --defer --state "$$state" $(DBT_ARGS)

# dbt slim CI (.github/workflows/dbt-slim-ci.yml): main's workflow saves its
# last good build (manifest and a warehouse dump); a pull request restores it
# into an empty warehouse, then builds what changed on the ci target.
SLIM_CI_STATE ?= .ci-state
dbt-state-save: install ## keep the last good build's manifest and a warehouse dump in SLIM_CI_STATE (for slim CI)
	$(RUN) python -m stack.slim_ci save "$(SLIM_CI_STATE)"

dbt-slim-ci: install ## slim CI: restore SLIM_CI_STATE into an empty warehouse, build state:modified+ on the ci target
	$(RUN) python -m stack.slim_ci restore "$(SLIM_CI_STATE)"
	DBT_TARGET=ci $(DBT) build --select state:modified+ --defer --state "$(abspath $(SLIM_CI_STATE))" $(DBT_ARGS)

airflow: install ## Airflow 3 standalone on http://127.0.0.1:${AIRFLOW_UI_PORT:-8080} (login admin, password printed), DAGs unpaused
	$(RUN) python -m stack.airflow

docs: up ## dbt docs site (lineage) on http://127.0.0.1:${DOCS_PORT:-8081}
	$(DBT) docs generate $(DBT_ARGS)
	$(RUN) python -m stack.dbt_docs
	$(RUN) bash -c 'exec dbt --no-use-colors docs serve $(DBT_ARGS) --port "$${DOCS_PORT:-8081}" --host 127.0.0.1 --no-browser'

# Superset in its own virtualenv (DATA_DIR/superset), the dashboards imported from dashboards/assets.
dashboards: up ## Superset on http://127.0.0.1:${SUPERSET_PORT:-8088} with the dashboards imported from dashboards/ (login admin, password printed)
	$(RUN) python -m stack.superset up

dashboards-down: ## stop Superset (make down stops it too)
	-$(RUN) python -m stack.superset down

# Debian's chromium and its chromedriver, for the dashboards test (headless).
browser: ## install headless Chromium for the dashboards test if missing (apt-get, as root)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium and chromium-driver (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends chromium chromium-driver >/dev/null; \
	  else \
	    echo "the dashboards test needs chromium and chromedriver: run" \
	      "'sudo apt-get install --no-install-recommends chromium chromium-driver'" \
	      "(Debian/Ubuntu), or put both on PATH" >&2; \
	    exit 1; \
	  fi; }

# Test tiers, by pytest marker (docs/testing.md); ARGS goes to pytest:
# make test ARGS="-k kafka". Each tier starts its own ephemeral servers and
# removes them, also when stopped (SIGTERM or Ctrl-C). On xdist workers, idle
# ones stealing queued tests: three for the fast tier (its tests mostly wait on
# a server), two for the others (dbt keeps a core busy). PYTEST_WORKERS=N
# overrides both; PYTEST_WORKERS=0 runs in one process (for pdb).
pytest = $(RUN) pytest -n $(or $(PYTEST_WORKERS),$(1)) --dist worksteal
test: install ## the fast tier (about 3 min): loaders, datagen, config, servers, DAG integrity, dbt parse, rules and unit tests
	$(call pytest,3) -m "not e2e and not bench" $(ARGS)

test-e2e: install browser ## whole pipelines: dbt marts on hand-worked days (both adapters), make run, dag.test(), reports, dashboards
	$(call pytest,2) -m e2e $(ARGS)

test-bench: install ## every benchmark at a tiny size, and two days under Airflow's real scheduler
	$(call pytest,2) -m bench $(ARGS)

test-all: install browser ## every tier in one run (what .ci/run and the nightly CI run)
	$(call pytest,2) $(ARGS)

lint: install ## ruff, sqlfluff and actionlint (the locked versions; .ci/run runs this)
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) sqlfluff lint dbt_project
	$(RUN) actionlint

format: install ## apply ruff and sqlfluff fixes
	$(RUN) ruff check --fix .
	$(RUN) ruff format .
	$(RUN) sqlfluff fix dbt_project

# The scaling bench grows one throwaway stack from 7 to 70 days of history by
# default, timing a day at each (about 12 minutes): make bench SCALING="--days 14 --scale 10".
# The volume sweep times a day at DATAGEN_SCALE 1, 5, 10 and 20, a stack each
# (about 15 minutes): make bench SWEEP="--scales 1,2,4".
SCALING ?=
SWEEP ?=
bench: install ## every figure against its goal, in .local/bench/summary.json (and charts beside it): a warm day; one day at 10x vs 1x history (SCALING="--days N --scale K"); a day at 1-20x volume (SWEEP="--scales 1,5"); loaders vs psql \copy / a bare Kafka consumer; sales API per day; events models; DAG parse vs dbt ls; a Cosmos DAG vs dbt build; platform health's cost
	$(RUN) python -m tests.bench.summary --reset
	$(RUN) python -m tests.bench.scaling_bench $(SCALING)
	$(RUN) python -m tests.bench.volume_sweep $(SWEEP)
	$(RUN) python -m tests.bench.loader_bench
	$(RUN) python -m tests.bench.sales_bench
	$(RUN) python -m tests.bench.oltp_bench
	$(RUN) python -m tests.bench.kafka_bench
	$(RUN) python -m tests.bench.events_bench
	$(RUN) python -m tests.bench.events_dbt_bench
	$(RUN) python -m tests.bench.dag_parse_bench
	$(RUN) python -m tests.bench.airflow_bench
	$(RUN) python -m tests.bench.health_bench
	$(RUN) python -m tests.bench.summary

report: up ## the daily report of the latest day in the marts, to Telegram or .local/reports (ARGS="daily --date D --force" or "alerts")
	$(RUN) python -m reports $(or $(ARGS),daily --latest)

psql: up ## an interactive psql on the warehouse
	$(RUN) python -m stack psql

sql: install ## run one query, output only: make sql Q="select count(*) from marts.review_mart"
	@$(RUN) python -m stack up --quiet
	@$(RUN) python -m stack psql -c "$(Q)"

clean: down ## stop services and delete local data, logs and dbt output
	rm -rf .local dbt_project/target dbt_project/logs
