"""Production settings plus what the benchmark needs to observe the server.

Adds a trivial baseline view and a header with the number of SQL queries each
request ran. Everything else is exactly what `DJANGO_ENV=production` serves.
"""

from clinic.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
MIDDLEWARE = ["bench.server.QueryCountMiddleware", *MIDDLEWARE]  # noqa: F405
