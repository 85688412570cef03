# One-command set-up, tests and reproduction. See README.md.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PRESET ?= smoke

.PHONY: setup test reproduce bench dryrun-paper clean-smoke

setup:  ## venv + the package with its dev extras + a Jupyter kernel named "isfr"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip setuptools wheel
	$(PY) -m pip install -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name isfr --display-name "Python (isfr)"

test:   ## pytest for isfr/, then nbval over notebooks/ (smoke preset, default data source; tiny models run fastest on 1 thread)
	$(PY) -m pytest tests -p no:cacheprovider
	env -u ISFR_DATA_ROOT ISFR_RUNS_DIR=$(CURDIR)/runs MPLBACKEND=Agg OMP_NUM_THREADS=1 \
	  $(PY) -m pytest notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

reproduce:  ## run notebooks 01-08 with papermill at PRESET (smoke | small | paper)
	$(PY) -m isfr.apps.cli reproduce --preset $(PRESET)

dryrun-paper:  ## the paper preset end to end on the CPU with stand-in weights -> benchmarks/results/dryrun_paper*.md
	$(PY) -m isfr.apps.cli dryrun --preset paper
	$(PY) -m isfr.apps.cli dryrun --preset paper --preprocess ffhq

bench:  ## benchmark tables (data loading, models, training)
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean-smoke:
	rm -rf figures/smoke runs/smoke
