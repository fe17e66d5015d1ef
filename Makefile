# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# One thread per torch process: on 2 cores the default oversubscribes and trains ~20x slower.
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: install deps test demo clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# Only the dependencies of pyproject.toml (no source needed): docker/Dockerfile installs them in a layer of their own.
deps: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['test']))" > $(VENV)/requirements.txt
	$(PY) -m pip install -q -r $(VENV)/requirements.txt

# The lint pyproject.toml declares ([tool.ruff]) runs first: a finding fails the target before the tests start.
test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q tests

demo: install
	$(VENV)/bin/a2qflow run flows/configs/digits_mlp.yaml --out runs/demo

clean:
	rm -rf runs build .pytest_cache
