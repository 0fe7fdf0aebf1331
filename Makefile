# Everything a person does with this project. `make run` and `make test` are the two that matter.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Tests always run on PostgreSQL and Redis (the local standard ports unless set).
TEST_DATABASE_URL ?= $(or $(DATABASE_URL),postgres://postgres@127.0.0.1:5432/clinic)
TEST_REDIS_URL ?= $(or $(REDIS_URL),redis://127.0.0.1:6379/0)
TEST_ENV := DJANGO_ENV=test DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL)
PYTEST_ARGS ?=
# Schemathesis runs in its own process without xdist (under xdist it covers only part of the schema).
SCHEMATHESIS_TESTS := tests/api/test_schemathesis.py

.PHONY: run test test-fast venv lint format migrations-check security schema-check seed bench lock clean browser-deps

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	# Every file checked against the lock's hashes (the lock pins pip itself too).
	$(VENV)/bin/pip install --quiet --require-hashes -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

run: venv
	./scripts/run.sh

test: venv browser-deps
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory migrations-check
	$(MAKE) --no-print-directory security
	$(MAKE) --no-print-directory schema-check
	$(TEST_ENV) $(PY) -m pytest --ignore=$(SCHEMATHESIS_TESTS) $(PYTEST_ARGS)
	$(TEST_ENV) $(PY) -m pytest -n0 $(SCHEMATHESIS_TESTS)

# The edit-test loop: the suite without the tests that start processes (Celery workers, gunicorn,
# manage.py, pg_dump), drive a browser, or are marked slow, and without Schemathesis; no lint.
# The test databases are reused between runs (PYTEST_ARGS=--create-db rebuilds them).
FAST_MARKERS := not slow and not processes and not browser
test-fast: venv
	$(TEST_ENV) $(PY) -m pytest -m "$(FAST_MARKERS)" --ignore=$(SCHEMATHESIS_TESTS) $(PYTEST_ARGS)

# The intake browser test drives Debian's Chromium through Playwright (never `playwright install`).
# Installed here when missing and possible; otherwise that test fails saying what is missing.
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	  else \
	    echo "browser test: /usr/bin/chromium missing; run: sudo apt-get install chromium chromium-driver"; \
	  fi; \
	fi

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrations-check: venv
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run

# Known-vulnerable dependencies (pip-audit; exceptions are dated in .pip-audit-ignore),
# medium-or-higher findings in our code (bandit), and Django's deployment checks.
security: venv
	./scripts/pip_audit.sh
	$(VENV)/bin/bandit --quiet --severity-level medium --recursive clinic patients sessions treatments intake --exclude '*/migrations/*'
	DJANGO_ENV=production SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(64))') ALLOWED_HOSTS=clinic.example \
	  DATABASE_URL=postgres://check@127.0.0.1:1/check REDIS_URL=redis://127.0.0.1:1/0 \
	  $(PY) manage.py check --deploy --fail-level WARNING

# The OpenAPI schema generates without warnings and validates against the OpenAPI 3 spec.
schema-check: venv
	$(TEST_ENV) $(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

seed: venv
	$(PY) manage.py migrate --no-input
	$(PY) manage.py seed_demo

bench: venv
	$(PY) -m bench $(if $(SCALE),--scale $(SCALE),)

# Re-resolve the lock files from requirements*.in with every file's hash (pip-compile keeps the
# versions already locked unless an .in file changed them). requirements.txt is the image's set;
# requirements-dev.txt is the same runtime set plus the development tools, for `make venv`.
PIP_COMPILE := $(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links
lock: venv
	$(PIP_COMPILE) -o requirements.txt requirements.in
	$(PIP_COMPILE) -o requirements-dev.txt requirements-dev.in

clean:
	rm -rf $(VENV) var/*.sqlite3 var/broker var/cache
