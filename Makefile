# The two commands: `make demo` (main job) and `make test` (whole suite).
# Both install what they need into .venv first (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
# Keep DDS discovery on this machine unless the caller says otherwise.
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

.PHONY: setup test test-unit demo bench clean
setup:
	@bash scripts/setup.sh

test: setup
	$(PY) -m pytest -q test

# The no-DDS tier (pure cores, checkpoints, bags on disk): under 2 minutes.
test-unit: setup
	$(PY) -m pytest -q -m unit test

demo: setup
	$(VENV)/bin/photon demo

bench: setup
	$(PY) benchmarks/loop_overhead.py

clean:
	rm -rf build/msgs
