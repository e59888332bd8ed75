PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint check clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m linebot_app serve

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -rs -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python -m bench

check: $(STAMP)
	$(BIN)/python -m linebot_app check

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var
