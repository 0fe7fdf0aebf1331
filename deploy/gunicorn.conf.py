"""gunicorn settings of the image (`gunicorn -c deploy/gunicorn.conf.py clinic.wsgi:application`).

No access log: the app writes one JSON line per request (clinic.observability.logs) with the
request id, clinic, caller, client address and duration, and without the raw path, which for
intake and calendar links is a secret. Metrics of every worker process are added up from
PROMETHEUS_MULTIPROC_DIR (clinic.observability.metrics); a dead worker's files are marked.
"""

import os
import pathlib
import shutil

from prometheus_client import multiprocess

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# The reverse proxy keeps connections open to us; longer than its idle timeout.
keepalive = 75
accesslog = None
# REMOTE_ADDR stays the proxy's address: which X-Forwarded-For entries count is decided by
# the app (TRUSTED_PROXIES, clinic.security.addresses), and the scheme by SECURE_PROXY_SSL_HEADER.


def on_starting(server):
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        # Series of a previous run would be added to this one's.
        shutil.rmtree(directory, ignore_errors=True)
        pathlib.Path(directory).mkdir(parents=True, exist_ok=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
