"""Production settings plus what the benchmark needs to observe the server.

Adds a trivial baseline view and a header with the number of SQL queries each
request ran. Everything else is exactly what `DJANGO_ENV=production` serves.
"""

from clinic.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
MIDDLEWARE = ["bench.server.QueryCountMiddleware", *MIDDLEWARE]  # noqa: F405
# 409s and 404s are expected answers under load; only errors are news in the run's output.
LOGGING["loggers"]["django.request"] = {"level": "ERROR"}  # noqa: F405
