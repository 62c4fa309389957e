# Two set-up commands, both idempotent: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The shared sample clips beside the checkout; the demo and tests read them from here.
SHARED ?= $(abspath ../shared/data)
export AVRESTORE_SAMPLES ?= $(SHARED)/talking_heads

.PHONY: install demo serve test lint format bench leaderboard clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test,web]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/avrestore demo --out demo_out

# The local web page on http://127.0.0.1:8000/ (this computer only); Ctrl-C stops it.
serve: install
	$(VENV)/bin/avrestore serve

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(PY) -m pytest -q --durations=15  # the slowest tests, to keep the suite inside 10 minutes

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(VENV)/bin/avrestore bench

# docs/leaderboard.md and its pictures; needs a prepared folder (avrestore prepare
# ../shared/data/talking_heads data/prepared224 --layout folder). Cached results are reused.
leaderboard: install
	$(VENV)/bin/avrestore leaderboard --data data/prepared224 \
		--niqe ../shared/data/misc/niqe_pris_params.npz --ceiling ts-vqgan-small \
		--ceiling ts-vqgan-small-long

clean:
	rm -rf $(VENV) demo_out .pytest_cache
