# make run   - set up and start the whole product on embedded defaults (SQLite, filesystem broker)
# make test  - install what the tests need, start or reuse PostgreSQL and Redis, run the whole suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# The services the suite runs on; override to point elsewhere.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL    ?= redis://127.0.0.1:6379
PYTEST_ARGS       ?=

.PHONY: run test install services lint bench-inventory bench-import clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.test-installed: requirements.txt tests/requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r tests/requirements.txt
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@echo "Starting web (http://localhost:8000), Celery worker, Celery beat and the SIP edge; Ctrl-C stops them all."
	@export DEBUG=$${DEBUG:-1}; trap 'kill 0' INT TERM EXIT; \
	lane=$${CELERY_TASK_DEFAULT_QUEUE:-celery}; \
	$(BIN)/celery -A portal worker --loglevel=INFO --concurrency=2 --queues=$$lane -n default@%h & \
	$(BIN)/celery -A portal worker --loglevel=INFO --pool=threads --concurrency=8 --queues=$$lane.commands \
		-n commands@%h & \
	$(BIN)/celery -A portal worker --loglevel=INFO --pool=threads --concurrency=8 --queues=$$lane.sync \
		-n sync@%h & \
	$(BIN)/celery -A portal beat --loglevel=INFO & \
	$(BIN)/python manage.py run_sip_edge & \
	$(BIN)/python manage.py runserver 0.0.0.0:8000

services:
	@bash .ci/ensure-services

test: $(VENV)/.test-installed services
	DATABASE_URL=$(TEST_DATABASE_URL) \
	CELERY_BROKER_URL=$(TEST_REDIS_URL)/15 \
	CACHE_URL=$(TEST_REDIS_URL)/14 \
	CACHE_KEY_PREFIX=test-$$$$ \
	CELERY_TASK_DEFAULT_QUEUE=test-$$$$ \
	SECRET_KEY=test-only-secret-key \
	$(BIN)/pytest -c tests/pytest.ini $(PYTEST_ARGS)

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .

bench-inventory: $(VENV)/.test-installed services
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/python bench/inventory.py

bench-import: $(VENV)/.test-installed services
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/python bench/import_csv.py

clean:
	rm -rf $(VENV) var
