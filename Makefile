PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test quick bench lint check clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m linebot_app serve

# The whole suite on three pytest-xdist workers (the tests mostly wait on servers, so three
# fit two cores), handed out one by one, the slow tests first.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -rs -p no:cacheprovider -n 3 --dist load --maxschedchunk 1

# The inner loop: everything but the tests marked slow (real servers, drills, the bench).
quick: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 3 --dist load --maxschedchunk 1 -m "not slow"

bench: $(STAMP)
	$(BIN)/python -m bench

check: $(STAMP)
	$(BIN)/python -m linebot_app check

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var
