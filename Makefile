# peakload — the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the test suite uses, as program:package (installed with apt-get only when the program is missing).
DEB_PROGRAMS := promtool:prometheus prometheus:prometheus /usr/lib/postgresql/15/bin/initdb:postgresql-15 \
	haproxy:haproxy redis-server:redis-server pgbackrest:pgbackrest chromium:chromium npm:npm \
	prometheus-postgres-exporter:prometheus-postgres-exporter prometheus-redis-exporter:prometheus-redis-exporter
S3RVER := .peakload/node/node_modules/.bin/s3rver

.PHONY: demo test lint venv system-deps s3rver oscar-venv clean bench

$(BIN)/.installed: pyproject.toml
	@command -v $(PY) >/dev/null || { echo "error: $(PY) not found (peakload needs Python 3.11)"; exit 2; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/peakload run --profile profiles/smoke.yaml

system-deps:
	@missing=""; for pp in $(DEB_PROGRAMS); do prog=$${pp%%:*}; pkg=$${pp##*:}; \
	  command -v $$prog >/dev/null 2>&1 || case " $$missing " in *" $$pkg "*) ;; *) missing="$$missing $$pkg";; esac; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

s3rver: $(S3RVER)
$(S3RVER):
	mkdir -p .peakload/node && cd .peakload/node && npm install --silent --no-audit --no-fund s3rver@3.7.1 >/dev/null

# the django-oscar test shop's own pinned venv (tests/oscar/requirements.txt), built once
oscar-venv: venv
	$(BIN)/python -c 'import sys; sys.path.insert(0, "tests/oscar"); import shop; shop.ensure_venv()'

# the floors (import-linter contracts in pyproject.toml), lint, and strict types on the core floor
lint: venv
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy peakload/core

test: venv system-deps s3rver oscar-venv lint
	$(BIN)/python -m pytest -q

bench: venv
	@for pp in wrk:wrk nginx:nginx; do command -v $${pp%%:*} >/dev/null || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; $$SUDO apt-get install -y -qq --no-install-recommends $${pp##*:} >/dev/null; }; done
	$(BIN)/python bench/storefront.py
	$(BIN)/python bench/exporter.py
	$(BIN)/python bench/report.py
	$(BIN)/python bench/fit.py
	@# master capacity (about 2.5 min): its goal is not met yet (docs/capacity.md), so exit 2 only prints; 1 (counts off) fails
	$(BIN)/python bench/master.py --quick || [ $$? -eq 2 ]
	@# shopper funnel per core vs bare FastHttpUser (about 2 min): below the 1.5x floor today (docs/open-model.md), so exit 2 only
	@# prints; 3 (failures, or client counts off the target's) fails. Then the idle RSS per pool user (about 2.5 min)
	$(BIN)/python bench/journey.py || [ $$? -eq 2 ]
	$(BIN)/python bench/journey.py --rss

clean:
	rm -rf $(VENV) .peakload results .pytest_cache
