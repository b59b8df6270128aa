# Two stages: the build stage makes the virtualenv, the runtime stage copies
# it. Builds with the classic builder (no BuildKit features).

FROM python:3.13-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --requirement /tmp/requirements.txt


FROM python:3.13-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=sessionsite.settings
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY manage.py gunicorn.conf.py docker-entrypoint.sh ./
COPY redis_hash_sessions ./redis_hash_sessions
COPY sessionsite ./sessionsite
COPY accounts ./accounts
COPY templates ./templates
# Hashed, compressed static files for whitenoise. The key exists only for
# this command; REDIS_URL keeps manage.py from starting an embedded Redis.
RUN DJANGO_SECRET_KEY=collectstatic-only REDIS_URL=redis://unused \
    python manage.py collectstatic --no-input --verbosity 0
USER app
EXPOSE 8000
# No curl in the slim image: Python asks /healthz, with an allowed Host.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import http.client, os; host = os.environ.get('DJANGO_ALLOWED_HOSTS', 'localhost').split(',')[0]; port = os.environ.get('GUNICORN_BIND', '0.0.0.0:8000').rsplit(':', 1)[1]; c = http.client.HTTPConnection('127.0.0.1', int(port), timeout=3); c.request('GET', '/healthz', headers={'Host': host}); raise SystemExit(c.getresponse().status != 200)"]
ENTRYPOINT ["/app/docker-entrypoint.sh"]
# gunicorn.conf.py names the application: WSGI, or ASGI with SITE_INTERFACE=asgi.
CMD ["gunicorn", "--config", "gunicorn.conf.py"]
