# The two commands of the README:
#   make book   set up, then build the site (executes every chapter on offline data)
#   make test   run the whole test suite (unit tests, chapters under nbval, book build, browser tests)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install browser assets book test clean

install: $(STAMP)

# torch is installed first, pinned, so that pip does not pull a multi-GB CUDA build.
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$$(grep -m1 '^torch==' requirements.txt)"
	$(PY) -m pip install --quiet -r requirements.txt -e ".[book,test]"
	touch $(STAMP)

# The browser tests drive Debian's Chromium (never a downloaded browser).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "Chromium is missing: sudo apt-get install chromium"; exit 1; \
	  fi; }

# MathJax and the widget manager from the npm registry, so the site works offline.
assets: install
	$(PY) scripts/fetch_web_assets.py

book: install assets
	$(VENV)/bin/jupyter-book build . --all --warningiserror --keep-going
	@echo "The site is at $(CURDIR)/_build/html/index.html"

test: install browser
	$(PY) -m pytest tests chapters --nbval-lax -p no:cacheprovider

clean:
	rm -rf _build
