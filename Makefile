# Every target sets up .venv itself: a fresh machine needs only python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed
# Arize Phoenix, the tracing backend the live tests export to, has a virtualenv of its own: it pins
# many packages, and none of them may constrain ours.
PHOENIX_VENV := .venv-phoenix
PHOENIX_STAMP := $(PHOENIX_VENV)/.installed
PYTEST_ARGS ?=
# The browser tests use the distribution's chromium; Playwright must never fetch its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
# Material for MkDocs prints a notice about MkDocs 2.0 on every build; the site pins MkDocs 1.
export NO_MKDOCS_2_WARNING := 1

.PHONY: venv phoenix-venv system-deps test matrix floors ci-matrix demo demo-phoenix chat-screenshot
.PHONY: phoenix-screenshot bench bench-check bench-instructions soak lint format clean docs

# The Pythons the package claims (pyproject.toml's classifiers): `make matrix` runs the suite on
# each, from a virtualenv of its own, `.venv-pyX.Y`, built from that interpreter.
MATRIX_PYTHONS ?= 3.11 3.12 3.13
# The oldest of them, where `make floors` installs every dependency at its declared floor.
FLOORS_PYTHON := 3.11
FLOORS_VENV := .venv-floors
# What the matrix passes to pytest (default: the whole suite).
MATRIX_PYTEST_ARGS ?=
# An interpreter X.Y: pyenv's newest X.Y.Z, else pythonX.Y on PATH; empty when there is none.
PYENV_ROOT ?= $(HOME)/.pyenv
python_for = $(or $(shell ls -d $(PYENV_ROOT)/versions/$(1).*/bin/python$(1) 2>/dev/null \
	| sort -V | tail -n 1),$(shell command -v python$(1) 2>/dev/null))
# Stops make, naming the version, when a claimed interpreter is missing.
define require_python
	@test -n "$(call python_for,$(1))" || { echo "Python $(1) is claimed but not installed:" \
		"install it (pyenv install $(1)), or leave it out: make matrix MATRIX_PYTHONS=..." >&2; exit 1; }
endef

# Debian packages the live tests start for real: COMMAND=PACKAGE, installed when COMMAND is missing.
SYSTEM_DEPS := redis-server=redis-server chromium=chromium curl=curl
# What only `make bench` runs: wrk loads the real servers, valgrind counts instructions.
BENCH_SYSTEM_DEPS := wrk=wrk valgrind=valgrind

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --editable . --group test --group lint --group docs
	touch $@

# The peers and plotting only the benchmarks use: `make test` never installs them.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --group bench
	touch $@

phoenix-venv: $(PHOENIX_STAMP)

# The pin is the `phoenix` dependency group of pyproject.toml (about 850 MB, a minute or two).
$(PHOENIX_STAMP): pyproject.toml
	$(PYTHON) -m venv $(PHOENIX_VENV)
	$(PHOENIX_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PHOENIX_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --group phoenix
	touch $@

system-deps:
	tools/system_deps.sh $(SYSTEM_DEPS)

# uv (from the test group) builds these virtualenvs: several times faster than pip. They are
# seeded with pip, which the tests that build the wheel and make fresh virtualenvs run.
.venv-py%/.installed: pyproject.toml | $(STAMP)
	$(call require_python,$*)
	rm -rf .venv-py$*
	$(BIN)/uv venv --quiet --seed --python "$(call python_for,$*)" .venv-py$*
	$(BIN)/uv pip install --quiet --python .venv-py$*/bin/python --editable . \
		--group test --group lint --group docs
	touch $@

# Every extra and the test and lint groups at the lowest versions pyproject.toml allows
# (uv's lowest-direct resolution); tools/floors.py stops here if one is not its declared floor.
$(FLOORS_VENV)/.installed: pyproject.toml | $(STAMP)
	$(call require_python,$(FLOORS_PYTHON))
	rm -rf $(FLOORS_VENV)
	$(BIN)/uv venv --quiet --seed --python "$(call python_for,$(FLOORS_PYTHON))" $(FLOORS_VENV)
	$(BIN)/uv pip compile --quiet pyproject.toml --extra all --group test --group lint \
		--resolution lowest-direct --python $(FLOORS_VENV)/bin/python -o $(FLOORS_VENV)/floors.txt
	$(BIN)/python -m tools.floors $(FLOORS_VENV)/floors.txt
	$(BIN)/uv pip install --quiet --python $(FLOORS_VENV)/bin/python -r $(FLOORS_VENV)/floors.txt
	$(BIN)/uv pip install --quiet --python $(FLOORS_VENV)/bin/python --no-deps --editable .
	# The documentation's tools are no claim of the package: today's, as `make lint` uses them.
	$(BIN)/uv pip install --quiet --python $(FLOORS_VENV)/bin/python --group docs
	touch $@

# The suite on every claimed Python, then on the oldest with every dependency at its floor.
matrix: $(foreach version,$(MATRIX_PYTHONS),.venv-py$(version)/.installed) phoenix-venv system-deps
	$(BIN)/python -m tools.matrix $(foreach version,$(MATRIX_PYTHONS),.venv-py$(version)) \
		-- $(MATRIX_PYTEST_ARGS)
	$(MAKE) floors

# Typing is checked against today's libraries by `make lint`: at their floors some type their
# API differently, so the tests that run mypy are left out here.
FLOORS_PYTEST_ARGS := --deselect tests/test_docs.py::test_python_blocks_pass_mypy_strict

floors: $(FLOORS_VENV)/.installed phoenix-venv system-deps
	$(BIN)/python -m tools.matrix $(FLOORS_VENV) -- $(FLOORS_PYTEST_ARGS) $(MATRIX_PYTEST_ARGS)

# CI: `make test` ran the whole suite on $(PYTHON) already. This runs it on the other claimed
# Pythons, on two cores (pytest-xdist), less the modules whose subject is not the interpreter:
# the soak, what runs the documentation (its blocks, commands and built site), the browser and
# Phoenix tests (Chromium's and Phoenix's own processes), the packaging (the built wheel, the
# extras' fresh virtualenvs) and `opentelemetry-instrument`'s start-up.
# `make matrix` runs everything, floors included; CI's 45 minutes do not hold three more runs.
CI_MATRIX_PYTEST_ARGS := -n 2 --dist loadfile \
	--ignore=tests/live/test_soak.py --ignore=tests/live/test_phoenix.py \
	--ignore=tests/live/test_llm_chat.py --ignore=tests/live/test_chat_recipe.py \
	--ignore=tests/live/test_browser.py --ignore=tests/live/test_docs_site.py \
	--ignore=tests/live/test_doc_commands.py --ignore=tests/live/test_walkthrough.py \
	--ignore=tests/live/test_extras.py --ignore=tests/test_docs.py \
	--ignore=tests/test_release.py --ignore=tests/live/test_zero_code.py
CI_PYTHONS = $(filter-out $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'),\
	$(MATRIX_PYTHONS))

ci-matrix: $(foreach version,$(CI_PYTHONS),.venv-py$(version)/.installed) system-deps
	$(BIN)/python -m tools.matrix $(foreach version,$(CI_PYTHONS),.venv-py$(version)) \
		-- $(CI_MATRIX_PYTEST_ARGS)

# The suite on two cores (pytest-xdist), each module on one worker, with coverage from both
# workers (pytest-cov), held to pyproject.toml's fail_under. The modules go out in the order of
# the tree: the live ones, slow and few, first, and the many quick unit modules fill the end.
# TEST_WORKERS=0: in one process.
TEST_WORKERS ?= 2

test: venv phoenix-venv system-deps
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder \
		--cov --cov-report=term $(PYTEST_ARGS)

demo: venv
	$(BIN)/python -m tools.demo

# docs/chat-page.png: the example's chat page in chromium after three turns and a websocket message.
chat-screenshot: venv system-deps
	$(BIN)/python -m tools.chat_screenshot

# Phoenix, the FastAPI example's chat and a model server on loopback, a three-turn LLM chat in one
# session, and that session's URL in Phoenix; Ctrl-C stops all.
demo-phoenix: venv phoenix-venv
	$(BIN)/python -m tools.demo_phoenix

# The same chat, photographed in Phoenix by headless Chromium: docs/phoenix-session.png.
phoenix-screenshot: venv phoenix-venv system-deps
	$(BIN)/python -m tools.phoenix_screenshot

# The soak also runs in `make test`; this prints its figures.
soak: venv
	$(BIN)/python -m tests.live.soak

# wrk and valgrind come from the distribution's packages.
bench: $(BENCH_STAMP)
	tools/system_deps.sh $(BENCH_SYSTEM_DEPS)
	$(BIN)/python -m benchmarks

# Only the instruction counts per request (cachegrind, about half an hour): what to optimize by.
bench-instructions: $(BENCH_STAMP)
	tools/system_deps.sh $(BENCH_SYSTEM_DEPS)
	$(BIN)/python -m benchmarks.instructions

# The quick, figure-free run of the benchmark code, so that it cannot rot.
bench-check: $(BENCH_STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider benchmarks/test_quick.py

lint: $(BENCH_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mkdocs build --strict --quiet

# The documentation site, from docs/ and the docstrings, into site/ (open site/index.html).
docs: venv
	$(BIN)/mkdocs build --strict

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) $(PHOENIX_VENV) .venv-py3.* $(FLOORS_VENV) .coverage .mypy_cache .pytest_cache
	rm -rf .ruff_cache site dist
