# facecraft_d2 — `make demo` and `make test` work on a fresh machine (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test demo clean-venv

# Create or reuse the project virtualenv and install torch, detectron2 v0.6 and facecraft_d2.
setup:
	$(PYTHON) tools/bootstrap.py --venv $(VENV)

# Run the whole test suite (real-data tests need DETECTRON2_DATASETS, see README.md).
test: setup
	$(PY) -m pytest tests $(PYTEST_ARGS)

# Run the shipped FaceCraft model on the bundled sample image.
demo: setup
	$(PY) tools/demo.py --output output/demo/grace_hopper_faces.jpg

clean-venv:
	rm -rf $(VENV)
