# The two commands of the README:  make book  (set up + build the site)   make test  (all tests)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install book test clean

install: $(STAMP)

# torch is installed first, pinned, so that pip does not pull a multi-GB CUDA build.
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$$(grep -m1 '^torch==' requirements.txt)"
	$(PY) -m pip install --quiet -r requirements.txt -e ".[book,test]"
	touch $(STAMP)

book: install
	$(VENV)/bin/jupyter-book build . --warningiserror --keep-going
	@echo "The site is at $(CURDIR)/_build/html/index.html"

test: install
	$(PY) -m pytest tests chapters --nbval-lax -p no:cacheprovider

clean:
	rm -rf _build
