# One image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    VAR_DIR=/app/var

WORKDIR /app
RUN useradd --create-home --uid 10001 clinic
COPY requirements.txt ./
RUN pip install -r requirements.txt
COPY . .
# collectstatic needs settings, not secrets or services: give it throwaway values.
RUN DJANGO_ENV=development SECRET_KEY=build-only python manage.py collectstatic --no-input \
    && mkdir -p /app/var && chown -R clinic:clinic /app/var
USER clinic
EXPOSE 8000
CMD ["gunicorn", "clinic.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
