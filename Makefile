# The two commands: `make demo` (main job) and `make test` (whole suite).
# Both install what they need into .venv first (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
# Keep DDS discovery on this machine unless the caller says otherwise.
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

.PHONY: setup test test-unit test-fuzz demo bench clean
setup:
	@bash scripts/setup.sh

# A failed run reruns only the tests that failed, once (the first failure stays in the log): a
# safety net for DDS timing on a loaded 2-core machine. Tests that failed under load were made
# lockstep or count-until-seen; a failure that repeats on the rerun is real.
test: setup
	$(PY) -m pytest -q test || (echo "[test] rerunning the failed tests once" && $(PY) -m pytest -q --last-failed test)

# The no-DDS tier (pure cores, checkpoints, bags on disk), without the fuzz tier: ~1 min here.
test-unit: setup
	$(PY) -m pytest -q -m "unit and not fuzz" test

# Hypothesis over the cores that take outside input (part of `make test` too): ~2 min here.
test-fuzz: setup
	$(PY) -m pytest -q -m fuzz test

demo: setup
	$(VENV)/bin/photon demo

bench: setup
	$(PY) benchmarks/loop_overhead.py

clean:
	rm -rf build/msgs
