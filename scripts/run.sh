#!/usr/bin/env bash
# `make run`: migrate, load catalogs and the demo clinic, then serve with a worker and beat.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
# A local .env (copy .env.example) applies to every step, as honcho applies it to the processes.
if [ -f .env ]; then set -a; . ./.env; set +a; fi
export PORT="${PORT:-8000}"
mkdir -p "${VAR_DIR:-var}"

$PY manage.py migrate --no-input
$PY manage.py seed_demo

if [ -z "${REDIS_URL:-}" ]; then
  # The filesystem broker has no broadcast channel for gossip and mingle.
  export CELERY_WORKER_FLAGS="--without-gossip --without-mingle"
  echo "Broker: embedded (filesystem, ${VAR_DIR:-var}/broker). Set REDIS_URL to use Redis."
else
  export CELERY_WORKER_FLAGS=""
  echo "Broker: $REDIS_URL"
fi
echo
echo "  Admin:    http://127.0.0.1:${PORT}/admin/   (logins above)"
echo "  API docs: http://127.0.0.1:${PORT}/api/docs/"
echo "  Health:   http://127.0.0.1:${PORT}/healthz (liveness), /readyz (readiness)"
echo "  Links sent to patients start with ${PUBLIC_BASE_URL:-http://127.0.0.1:${PORT}} (PUBLIC_BASE_URL; follows PORT)."
echo "  Ctrl-C stops the web server, the worker and beat."
echo
exec .venv/bin/honcho --procfile Procfile start
