#!/usr/bin/env bash
# Migrate (and create the demo user when asked), then hand PID 1 to the
# command, so that gunicorn receives docker stop's SIGTERM itself.
set -o errexit -o pipefail -o nounset

if [[ "${MIGRATE_ON_START:-1}" == "1" ]]; then
    python manage.py migrate --no-input
fi
if [[ -n "${DEMO_USERNAME:-}" ]]; then
    python manage.py ensure_demo_user
fi
exec "$@"
