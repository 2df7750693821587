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

.PHONY: venv phoenix-venv system-deps test demo demo-phoenix chat-screenshot phoenix-screenshot
.PHONY: bench bench-check bench-instructions soak lint format clean docs

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

test: venv phoenix-venv system-deps
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/coverage report

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

# Only the instruction counts per request (cachegrind), a few minutes: the figure to optimize by.
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
	rm -rf $(VENV) $(PHOENIX_VENV) .coverage .mypy_cache .pytest_cache .ruff_cache site dist
