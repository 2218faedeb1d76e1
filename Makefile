# Canopy: `make run` for a working console with demo data, `make test` for the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1:8000

.PHONY: run test install install-dev lint migrate seed clean api-client screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.installed

# The single sign-on tests' OpenID Provider (oidc-provider on Node): installed when node is on the machine; without
# it those tests are skipped (required under CI, where .ci/run installs it).
IDP := scripts/test_idp
$(IDP)/node_modules/.package-lock.json: $(IDP)/package-lock.json
	cd $(IDP) && npm ci --no-audit --no-fund

# Redocly CLI for the API client check's lint of the OpenAPI schema (scripts/api_client_check), likewise on Node.
API_CLIENT := scripts/api_client
$(API_CLIENT)/node_modules/.package-lock.json: $(API_CLIENT)/package-lock.json
	cd $(API_CLIENT) && npm ci --no-audit --no-fund

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory $(IDP)/node_modules/.package-lock.json $(API_CLIENT)/node_modules/.package-lock.json; fi

# Development server on SQLite (var/db.sqlite3) unless DATABASE_URL says otherwise; prints the demo logins. Beside
# it, an agent of the platform's global runtime (scripts/dev_run), so Run really runs; Ctrl-C stops both.
run: install
	DEBUG=True $(BIN)/python manage.py migrate --no-input
	DEBUG=True SITE_URL=http://$(HOST) $(BIN)/python manage.py seed_demo
	DEBUG=True $(BIN)/python scripts/dev_run $(HOST)

# The whole suite, SQLite unless DATABASE_URL is set. Extra pytest arguments: make test ARGS="-k switcher".
test: install-dev
	$(BIN)/pytest $(ARGS)

# docs/screenshots/<page>-<width>.png (the README shows two): the main pages of the demo at 1400 and 390 px, taken
# by the layout's browser test (tests/e2e/test_layout_e2e.py) in Debian's chromium. Commit the PNGs it changes.
screenshots: install-dev
	CANOPY_SCREENSHOTS=1 $(BIN)/pytest -q -p no:cacheprovider tests/e2e/test_layout_e2e.py -k screenshots

# The static checks CI runs before the tests: lint, formatting, types and the '# type: ignore' ratchet.
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=True $(BIN)/mypy
	$(BIN)/python scripts/type_ignores

# The schema proved with integrators' tools: Redocly's lint, a generated Python client imported and type-checked
# (mypy --strict) with the quick start (examples/integrator_quickstart.py), which then runs against a live server.
# SQLite unless CLIENT_DATABASE_URL names a PostgreSQL database of its own (dropped and re-created).
api-client: install-dev
	scripts/api_client_check

clean:
	rm -rf $(VENV) var staticfiles
