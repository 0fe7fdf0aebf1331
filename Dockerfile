# One image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    VAR_DIR=/app/var \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus

WORKDIR /app
RUN useradd --create-home --uid 10001 clinic
COPY requirements.txt ./
# Wheels only, each checked against the lock's hash; nothing outside the lock (--no-deps).
RUN pip install --require-hashes --only-binary=:all: --no-deps -r requirements.txt
COPY . .
# collectstatic runs under production settings, so the manifest storage production serves with
# writes its manifest (hashed names; without it /admin/ and /api/docs/ answer 500). It needs
# settings, not secrets or services: throwaway values, nothing is connected to.
RUN DJANGO_ENV=production SECRET_KEY=build-only-collectstatic-not-a-secret-0123456789abcdef \
    ALLOWED_HOSTS=build.invalid DATABASE_URL=postgres://build@127.0.0.1:1/build REDIS_URL=redis://127.0.0.1:1/0 \
    python manage.py collectstatic --no-input \
    && mkdir -p /app/var /tmp/prometheus && chown -R clinic:clinic /app/var /tmp/prometheus
USER clinic
EXPOSE 8000
CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py", "clinic.wsgi:application"]
