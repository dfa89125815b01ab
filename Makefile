# The two commands of the README:
#   make book   set up, then build the site (executes every chapter on offline data)
#   make test   run the whole test suite (unit tests, chapters under nbval, book build, browser tests)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Finished experiment runs, reused by the book build, nbval and the Colab-environment test
# (companion.experiments.core.cached: keyed by budget, seed and the companion's source).
export COMPANION_RUN_CACHE ?= $(CURDIR)/_build/runs

.PHONY: install browser assets book editions release lab test test-fast clean

install: $(STAMP)

# torch is installed first, pinned, so that pip does not pull a multi-GB CUDA build. Where the
# default index serves only CUDA builds, name PyTorch's CPU index:
#   make book TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "Python 3.11 or newer is needed; $(PYTHON) is $$($(PYTHON) --version 2>&1). Name another: make PYTHON=python3.12 ..."; exit 1; }
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  echo "$(PYTHON) cannot make a virtual environment: install venv (Debian/Ubuntu: sudo apt-get install python3-venv)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$$(grep -m1 '^torch==' requirements.txt)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet -r requirements.txt -e ".[book,lab,test]"
	touch $(STAMP)

# The browser tests drive Debian's Chromium (never a downloaded browser), or the binary that
# $CHROMIUM names (any Chromium or Chrome, for a machine without root).
browser:
	@[ -n "$$CHROMIUM" ] && [ -x "$$CHROMIUM" ] || command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "Chromium is missing: sudo apt-get install chromium, or without root CHROMIUM=/path/to/chrome make test"; exit 1; \
	  fi; }

# MathJax and the widget manager from the npm registry, so the site works offline.
assets: install
	$(PY) scripts/fetch_web_assets.py

# Incremental: Sphinx re-reads only the pages that changed, and jupyter-cache re-executes only
# chapters whose code changed (all of them when companion/ changed; _ext/execution_cache.py).
# `make book FULL=1` rebuilds and re-executes everything.
book: install assets
	$(if $(FULL),COMPANION_EXECUTE=force )$(VENV)/bin/jupyter-book build . $(if $(FULL),--all )--warningiserror --keep-going
	@echo "The site is at $(CURDIR)/_build/html/index.html"

# The Colab edition of every page (chapters/*.ipynb), generated from the .md sources, with the
# numbers the book's build computed written into their text (chapters/book_numbers.json).
editions: book
	$(PY) scripts/colab_edition.py --numbers

# Cut a release: bump companion.__version__, rebuild the book and write the editions so that they
# install the tag, check every name they use, commit and tag; then the editions on main install
# main again (scripts/release.py). Then: git push origin main vVERSION
release: install
	@test -n "$(VERSION)" || { echo "usage: make release VERSION=x.y.z"; exit 1; }
	$(PY) scripts/release.py release $(VERSION)

# Read and run the chapters locally: JupyterLab that renders MyST and opens the .md sources
# as notebooks (jupytext). Open chapters/01_autoencoder.md and run it.
lab: install
	$(VENV)/bin/jupyter lab --notebook-dir=. chapters/01_autoencoder.md

test: install browser
	$(PY) -m pytest tests chapters --nbval-lax -p no:cacheprovider

# Day-to-day: the unit tests alone (no notebooks, no book build, no browser), a few minutes.
test-fast: install
	$(PY) -m pytest tests -m "not slow" --ignore=tests/site -p no:cacheprovider

clean:
	rm -rf _build .venv-colab
