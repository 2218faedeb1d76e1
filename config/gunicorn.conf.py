"""gunicorn settings for Canopy: ``gunicorn -c config/gunicorn.conf.py config.wsgi`` (README.md, Deploying).

Every value can be changed on the command line or with GUNICORN_CMD_ARGS. The access log goes to standard output
with tokens and secret query values masked (config/redaction.py)."""

import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
# Threads per worker: a request waiting on a database lock (up to TENANT_LOCK_TIMEOUT_MS) holds one thread, not a
# whole worker, so reads keep flowing while writes queue. Each thread keeps its own database connection: size
# PostgreSQL's max_connections for workers × threads (+ commands).
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
accesslog = os.environ.get("ACCESS_LOG", "-")
logger_class = "config.redaction.RedactingLogger"
# Behind a reverse proxy that terminates TLS (README.md): trust its X-Forwarded-* headers.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
