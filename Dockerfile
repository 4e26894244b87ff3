# syntax=docker/dockerfile:1

# --- build: resolve and install Palisade and its runtime dependencies into a venv ---
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY app ./app
RUN /opt/venv/bin/pip install .

# --- runtime: the venv, the migrations, a non-root user; no compilers, no dev tools ---
FROM python:3.11.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PALISADE_MIGRATIONS_DIR=/srv/palisade/migrations \
    PALISADE_DATA_DIR=/var/lib/palisade
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/palisade --create-home palisade
COPY --from=build /opt/venv /opt/venv
COPY migrations /srv/palisade/migrations
WORKDIR /srv/palisade
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["palisade"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
