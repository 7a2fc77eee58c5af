# Two commands for a newcomer:  make demo   (set up + run the demo)   and   make test
PY ?= python3.11
VENV ?= .venv
EXTRAS ?= service,model,pdf,dev

.PHONY: venv demo test test-fast test-outages lint format bench services images stack-smoke

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[$(EXTRAS)]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/medgemma-spatial demo --out demo-out

services:
	bash .ci/services.sh

test: venv services
	$(VENV)/bin/python -m pytest -q

test-fast: venv  # the unit tier: about 30 s
	$(VENV)/bin/python -m pytest -q tests/unit

test-outages: venv services  # Postgres/storage/Redis outages, worker kills (about 6 min)
	MGS_TEST_OUTAGES=1 $(VENV)/bin/python -m pytest -q tests/reliability/test_outages.py

lint: venv
	$(VENV)/bin/ruff check core api worker cli tests bench scripts
	$(VENV)/bin/ruff format --check core api worker cli tests bench scripts
	$(VENV)/bin/mypy

format: venv  # the code style (pre-commit runs it on the files of each commit)
	$(VENV)/bin/ruff format core api worker cli tests bench

bench: venv
	$(VENV)/bin/python bench/bench_core.py --layout visium --spots 5000 --repeats 3

# Container images and the compose stack, with podman or docker (docs/operations.md
# "Container images"): the API, analysis-worker and CPU report-worker images ...
images:
	PYTHON=$(VENV)/bin/python bash scripts/containers/build.sh

# ... and the whole stack from them, two jobs end to end, torn down with its volumes (about 2 min
# once the images exist)
stack-smoke:
	PYTHON=$(VENV)/bin/python bash scripts/containers/build.sh local-services
	PYTHON=$(VENV)/bin/python VENV=$(VENV) bash scripts/containers/smoke.sh
