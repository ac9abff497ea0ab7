# One image for every entry point: `campaign-consumer` by default, `campaign-producer …` as the
# command for jobs (docker run IMAGE campaign-producer status ID; the k8s CronJob does this),
# `campaign-api --host 0.0.0.0` for the operator API and its console, `campaign-webhooks --host
# 0.0.0.0` for Meta's webhook receiver (deploy/k8s, deploy/ecs).
#
# CI has no container engine: tests/deploy/test_image.py replays this file's build-stage RUN
# and COPY steps in a fresh virtualenv (same commands, same files, after .dockerignore) and
# starts the consumer from it; hadolint lints it (make check-deploy).

# The base, pinned by version (bump both stages together; Debian 12 "bookworm", Python 3.11).
FROM python:3.11.10-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
# Dependencies first (their layer survives code changes), exactly the pinned, hashed set.
COPY requirements/runtime.txt requirements/runtime.txt
RUN /opt/venv/bin/pip install --require-hashes -r requirements/runtime.txt
# Then the application itself: only the packages the entry points import (no sandbox,
# no tests), without dependencies (they are all installed above). Then the build tools go:
# the runtime virtualenv holds the pinned runtime set and the app, nothing else.
COPY pyproject.toml README.md ./
COPY campaigns campaigns
COPY consumer consumer
COPY producer producer
COPY api api
COPY webhooks webhooks
RUN /opt/venv/bin/pip install --no-deps . \
    && /opt/venv/bin/pip uninstall --yes setuptools pip

FROM python:3.11.10-slim-bookworm
# The runtime user: a fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
# PYTHONDONTWRITEBYTECODE: the root filesystem is read-only in production.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOG_FORMAT=json \
    METRICS_PORT=8000
USER 10001:10001
EXPOSE 8000
# The consumer drains on SIGTERM (finish the recipient in flight, release the rest, exit 0
# within SHUTDOWN_TIMEOUT_S); give it a stop timeout above that (docker stop -t 40).
STOPSIGNAL SIGTERM
# /healthz answers 200 while the poll loop turns (503 after 120 s without a turn).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('METRICS_PORT', '8000'), timeout=3)"]
CMD ["campaign-consumer"]
