# The README's two commands: `make run` serves the site, `make test` runs
# every test. Both create .venv and install the pinned requirements first.
PYTHON ?= python3.13
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bench bench-redis-time bench-micro bench-profile bench-scaling bench-asgi dist

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python requirements.txt requirements-dev.txt
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	@export DJANGO_DEBUG=$${DJANGO_DEBUG:-1}; \
	$(BIN)/python manage.py migrate --no-input && \
	$(BIN)/python manage.py collectstatic --no-input -v0 && \
	$(BIN)/python manage.py ensure_demo_user && \
	echo "==> Open http://127.0.0.1:8000/ and log in as $${DEMO_USERNAME:-admin} / $${DEMO_PASSWORD:-secret}" && \
	exec $(BIN)/python manage.py runserver 127.0.0.1:8000

test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Side by side with the other session engines, loaded by wrk (Debian's
# package; installed here when missing and make runs as root).
bench: $(VENV)/.installed
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } || \
	  { echo "bench needs wrk: apt-get install wrk"; exit 1; }
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.redis_time
	$(BIN)/python -m bench.asgi

# Redis's own time per request, on the embedded Valkey and on redis-server
# (Redis 7) when it is on PATH (bench runs it too).
bench-redis-time: $(VENV)/.installed
	$(BIN)/python -m bench.redis_time

bench-micro: $(VENV)/.installed
	$(BIN)/python -m bench.micro

# Each Redis store's request time in-process, and the engine's own steps
# timed warm and right after a Redis round trip, as a request runs them.
bench-profile: $(VENV)/.installed
	$(BIN)/python -m bench.profile

# Memory and load time with 10,000 to 1,000,000 sessions in Redis, and the
# cost of a user's login, listing and ending with 1 to 1,000 sessions.
bench-scaling: $(VENV)/.installed
	$(BIN)/python -m bench.scaling

# Our engine under sync, gthread and ASGI workers alone (bench runs it last).
bench-asgi: $(VENV)/.installed
	$(BIN)/python -m bench.asgi

# The engine's distribution (redis_hash_sessions alone: pyproject.toml), its
# wheel and sdist in dist/, and twine's check of their metadata.
dist: $(VENV)/.installed
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/python -m twine check --strict dist/*
