# The Threadneedle image: one image for the api, worker and beat services of
# docker-compose.yml, which choose what to run with their `command`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so that a change to the code alone reuses this layer.
# The slim image has no libpq: psycopg[binary]'s wheel bundles its own, and the build
# fails here if psycopg would fall back to its pure-Python implementation.
COPY pyproject.toml README.md ./
RUN mkdir -p domain workflows api workers cli \
    && touch domain/__init__.py workflows/__init__.py api/__init__.py workers/__init__.py cli/__init__.py \
    && pip install . \
    && pip uninstall -y threadneedle \
    && python -c "import psycopg; assert psycopg.pq.__impl__ == 'binary', psycopg.pq.__impl__; print('psycopg', psycopg.pq.__impl__, 'libpq', psycopg.pq.version())"

COPY domain ./domain
COPY workflows ./workflows
COPY api ./api
COPY workers ./workers
COPY cli ./cli
RUN pip install --no-deps . \
    && useradd --create-home --uid 10001 needle \
    && mkdir -p /tmp/threadneedle && chown needle /tmp/threadneedle

USER needle
EXPOSE 8000
CMD ["uvicorn", "--factory", "api.main:create_app", "--host", "0.0.0.0", "--port", "8000"]
