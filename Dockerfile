# syntax=docker/dockerfile:1
#
# Palisade image: the `palisade` command, the migration scripts, a non-root user.
#   docker build -t palisade:0.1.0 --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) .
# The default command serves the API on :8000; run `migrate`, `worker`, `sweep`, ... instead
# by passing them as the command (the entrypoint is `palisade`).
# It holds neither the Tavus simulator nor the embedded PostgreSQL: production serves an
# external database and Tavus. The `simulator` target is the simulator's own image, for
# trying the stack without a Tavus account (docker-compose.yml's simulator profile):
#   docker build --target simulator -t palisade-simulator:local .

# --- build: Palisade and its runtime dependencies, installed into a venv ------------------
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
# The runtime lock alone (docs/dependencies.md): exact versions, every file checked against
# its hash, the versions the tests ran; never the dev extra. Its own layer, rebuilt only
# when the lock changes. Every locked package ships a manylinux wheel for CPython 3.11, so
# no compiler is needed. pip writes the bytecode here, so the read-only runtime never needs to.
COPY requirements/runtime.txt ./requirements/
RUN /opt/venv/bin/pip install --require-hashes -r requirements/runtime.txt
# Then Palisade itself, with nothing more: only what the package build reads (see .dockerignore),
# and of the packages only `app`, so the build leaves the Tavus simulator out.
COPY pyproject.toml README.md ./
COPY app ./app
RUN /opt/venv/bin/pip install --no-deps .

# --- simulator-build: the same, with the Tavus simulator package beside `app` ------------
FROM build AS simulator-build
COPY tavus_simulator ./tavus_simulator
RUN /opt/venv/bin/pip install --no-deps .

# --- simulator: the Tavus simulator alone, as `palisade simulator` (not the default target) -
FROM python:3.11.11-slim-bookworm AS simulator
LABEL org.opencontainers.image.title="palisade-simulator" \
      org.opencontainers.image.description="Fault-injectable Tavus API simulator, for trying Palisade without a Tavus account; never for production." \
      org.opencontainers.image.licenses="Proprietary" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.11-slim-bookworm"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 palisade \
    && useradd --system --uid 10001 --gid palisade --no-log-init \
        --no-create-home --shell /usr/sbin/nologin palisade
COPY --from=simulator-build /opt/venv /opt/venv
USER 10001:10001
EXPOSE 8100
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=10 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8100/_sim/healthz', timeout=2).status != 200)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["palisade"]
CMD ["simulator", "--host", "0.0.0.0", "--port", "8100"]

# --- runtime: the venv, the migrations, a non-root user; no build tools -------------------
FROM python:3.11.11-slim-bookworm AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="palisade" \
      org.opencontainers.image.description="Session orchestrator for Tavus conversational video: reuse or ephemeral PALs, with guaranteed cleanup." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Proprietary" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.11-slim-bookworm"

# Production mode whatever else is set: the image binds every interface, and dev mode
# would serve its well-known admin token there. Without ADMIN_TOKEN and SECRET_KEY it
# refuses to start, saying so.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PALISADE_MIGRATIONS_DIR=/srv/palisade/migrations \
    PALISADE_DATA_DIR=/var/lib/palisade \
    PALISADE_MODE=production \
    FORWARDED_ALLOW_IPS=127.0.0.1

RUN groupadd --system --gid 10001 palisade \
    && useradd --system --uid 10001 --gid palisade --no-log-init \
        --home-dir /var/lib/palisade --create-home --shell /usr/sbin/nologin palisade

COPY --from=build /opt/venv /opt/venv
COPY migrations /srv/palisade/migrations
WORKDIR /srv/palisade

USER 10001:10001
EXPOSE 8000

# Liveness only (the process answers); readiness (/readyz) is the orchestrator's business.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]

# `palisade serve` turns SIGTERM into a graceful stop: uvicorn stops accepting, finishes
# in-flight requests (up to 20 s), then the reconciler drains (up to 10 s) and hands back
# its session claims. Give it 45 s or more before SIGKILL (compose stop_grace_period,
# Kubernetes terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["palisade"]
# Proxy headers are trusted from FORWARDED_ALLOW_IPS (set it to your load balancer's
# addresses). One uvicorn worker per container: scale with containers, not --workers.
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
