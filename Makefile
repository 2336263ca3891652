# The two commands of the README: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# CI pins the local CPU wheel of torch; users may install a newer torch (pyproject allows >=2.13.0).
TORCH  ?= torch==2.13.0
PORT   ?= 8501

.PHONY: run test venv clean bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

venv: $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/streamlit run app.py --server.address 0.0.0.0 --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false

test: $(VENV)/.installed
	$(PY) -m pytest -n 2 --durations=15 $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(PY) bench/bench_estimators.py
	$(PY) bench/bench_mmrm.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
