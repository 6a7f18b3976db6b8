# The two commands of the README: `make demo` and `make test`.
# Each creates or reuses .venv, installs the pinned requirements when they changed, then runs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# No network calls home, no ~/.prefect: Prefect keeps its local state inside the project.
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_HOME ?= $(CURDIR)/.prefect

.PHONY: demo test sweep lint venv clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) -m flows.demo $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(ARGS)

# pycodestyle, pyflakes, bugbear, import order, pyupgrade (rules in pyproject.toml); .ci/run runs it first.
lint: $(STAMP)
	$(PY) -m ruff check .

# Claims shown over many seeds (e.g. two runs at once under 15 jitter seeds): run by .ci/run.
sweep: $(STAMP)
	$(PY) -m pytest -m sweep $(ARGS)

clean:
	rm -rf $(VENV) .prefect .pytest_cache .hypothesis data reports
