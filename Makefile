# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
SCALE ?=
PYTEST_ARGS ?=

QUICK ?=
SCENARIOS ?=

.PHONY: venv bench services chromium rabbitmq-management rabbitmq-limits run test test-unit test-integration test-e2e test-chaos test-compose test-cluster compose-setup lint typecheck format lock generated clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

# PostgreSQL and RabbitMQ reachable (installed and started from Debian's packages when root).
services: venv chromium
	$(PY) -m devrun.run --ensure-services
	@$(MAKE) --no-print-directory rabbitmq-management rabbitmq-limits

# The compose broker's limits (max_message_size) on the machine's own RabbitMQ, when root.
rabbitmq-limits:
	@[ "$$(id -u)" != 0 ] || ! command -v rabbitmqctl >/dev/null || $(PY) -m devrun.broker_limits

# RabbitMQ's management API and UI (http://127.0.0.1:15672), enabled when root: the tests
# create and drop their vhosts through it in milliseconds (rabbitmqctl, their fallback, takes
# most of a second per call).
rabbitmq-management:
	@[ "$$(id -u)" != 0 ] || ! command -v rabbitmq-plugins >/dev/null || \
	  rabbitmq-plugins list -e -m 2>/dev/null | grep -qx rabbitmq_management || \
	  { rabbitmq-plugins enable rabbitmq_management >/dev/null && \
	    for i in $$(seq 30); do $(PY) -c "import socket; socket.create_connection(('127.0.0.1', 15672), 1)" 2>/dev/null && break; sleep 0.5; done; }

# Debian's Chromium for the docs UI test (tests/e2e/test_docs_ui.py), installed when root on
# Debian. Playwright drives it; `playwright install` is never used. Without it the test skips,
# or fails when CI=true.
chromium:
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || [ ! -f /etc/debian_version ] || \
	  { DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }
	@command -v chromium >/dev/null || echo "note: chromium is not installed; the docs UI test will skip"

run: venv
	SCALE="$(SCALE)" $(PY) -m devrun.run

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# bench/ is type-checked too, so its extra (matplotlib, faststream, psutil) is installed.
typecheck: $(VENV)/.bench
	$(VENV)/bin/mypy shared services tests deploy devrun bench

# The suite on TEST_WORKERS processes (pytest-xdist; every test has a database and vhost of
# its own; a file stays on one worker, so the compose file starts its system once; 3 was the
# quickest on 2 cores), then, with nothing else running, the suites marked ALONE: chaos
# restarts the machine's PostgreSQL and raises a RabbitMQ memory alarm, cluster runs three
# brokers. Exit code 5 is "no test selected", e.g. when PYTEST_ARGS names a test of the other
# part.
TEST_WORKERS ?= 3
PARALLEL = -n $(TEST_WORKERS) --dist loadfile
ALONE := chaos or cluster
test: lint typecheck services compose-setup
	$(PY) -m pytest $(PARALLEL) -m "not ($(ALONE))" $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(PY) -m pytest -m "$(ALONE)" $(PYTEST_ARGS) || [ $$? -eq 5 ]

test-unit: venv
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: services
	$(PY) -m pytest $(PARALLEL) tests/integration $(PYTEST_ARGS)

test-e2e: services
	$(PY) -m pytest $(PARALLEL) tests/e2e $(PYTEST_ARGS)

# The fault-injection suite at full size (2,000-booking runs, several faults of each kind);
# `make test` runs it reduced. Writes tests/chaos/results/latest.md. Restarts the machine's
# PostgreSQL and raises a RabbitMQ memory alarm briefly.
test-chaos: services
	CHAOS_SIZE=full $(PY) -m pytest tests/chaos -s --timeout 900 $(PYTEST_ARGS)

# What the compose tests need, where it is missing: a Docker engine (Debian's docker.io,
# started by hand), the compose plugin, and every image deploy/compose.yaml names, pulled or
# else built from the stand-ins in tests/compose/standins (test fixtures). Idempotent and a
# second when all is there; prints one line. Where no engine can run (not root, not Debian)
# it says why and the compose tests skip.
compose-setup: venv
	$(PY) -m tests.compose.standins.prepare

# deploy/compose.yaml built, started by the README's commands, loaded, broken and scaled on a
# real engine, in full (`make test` runs it reduced). About 2 minutes; 4.5 from a clean
# machine (measured on 2 cores).
test-compose: compose-setup
	COMPOSE_SIZE=full $(PY) -m pytest tests/compose -s $(PYTEST_ARGS)

# The three-node RabbitMQ cluster of deploy/compose.cluster.yaml (its brokers only; the
# services run as local processes listing the three nodes), broken under booking load: the
# leading node killed, a rolling restart, a node cut off past partition detection. Not in
# `make test`: forming the cluster alone takes a minute. Writes tests/cluster/results/latest.md.
# `make test-cluster CLUSTER_SIZE=reduced` for shorter faults.
CLUSTER_SIZE ?= full
test-cluster: services compose-setup
	CLUSTER_SIZE=$(CLUSTER_SIZE) $(PY) -m pytest tests/cluster -s --timeout 900 $(PYTEST_ARGS)

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Benchmarks (not tests; CI does not run them): every scenario against the real services,
# results in bench/results/. `make bench QUICK=1` is a fast smoke of every scenario;
# `make bench SCENARIOS="1 3"` runs some. wrk comes from Debian (installed when root).
$(VENV)/.bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $@

bench: services $(VENV)/.bench
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } \
		|| echo "wrk missing (apt-get install wrk): scenario 1 will be reported not available"
	BENCH_QUICK=$(QUICK) $(PY) -m bench $(SCENARIOS)

# The image's dependencies pinned with their hashes, for deploy/Dockerfile's
# `pip install --require-hashes`: deploy/requirements.lock from [project.dependencies],
# deploy/build-requirements.lock from [build-system.requires], both by `uv pip compile`
# for Python 3.11 on every platform. Pins already in a lock are kept unless pyproject.toml
# asks otherwise; `make lock UPGRADE=1` moves everything to the newest allowed versions.
# tests/unit/test_dependency_lock.py fails when the locks no longer match pyproject.toml.
UV_COMPILE = $(VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 \
	--generate-hashes --custom-compile-command "make lock" $(if $(UPGRADE),--upgrade)

$(VENV)/.lock: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev,lock]'
	touch $@

lock: $(VENV)/.lock
	$(UV_COMPILE) pyproject.toml -o deploy/requirements.lock
	$(PY) -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['build-system']['requires'], sep='\n')" \
	  | $(UV_COMPILE) - -o deploy/build-requirements.lock

# The files that follow from the code: compose.yaml's consumer services and passwords, the env
# example's passwords (deploy/generate.py), the broker's reference definitions. A unit test
# fails while any of them is stale.
generated: venv
	$(PY) deploy/generate.py
	$(PY) deploy/rabbitmq/make_definitions.py --reference

clean:
	rm -rf $(VENV) *.egg-info .mypy_cache .ruff_cache
