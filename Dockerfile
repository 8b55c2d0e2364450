# The gateway image: `gateway serve`, `gateway migrate` and the admin commands; it also carries
# the engine builder and the contract package it shares with the gateway, which the chart's
# engine build Job copies out and runs inside Triton's TensorRT-LLM image (so engines are built
# by the same version of the contract that the gateway serves them with). The gateway never
# imports the builder (lint-imports). The local runtime (`gateway up`) is for one machine and
# is not in the image. Non-root, no compilers.
# Build: docker build -t ghcr.io/example/llm-gateway:0.1.0 .
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Dependencies first, exactly as uv.lock pins them (the versions the test suite ran with),
# hash-checked: a layer that changes only with the lock. uv itself is pinned and hash-checked
# too, and leaves the image once it has written the requirements.
COPY scripts/uv.requirements pyproject.toml uv.lock ./
RUN pip install --no-deps --require-hashes -r uv.requirements \
    && uv export --frozen --no-dev --no-emit-project --no-header -o requirements.txt \
    && pip install --no-deps --require-hashes -r requirements.txt \
    && pip uninstall --yes uv

COPY alembic.ini ./
COPY migrations ./migrations
COPY llm_contract ./llm_contract
COPY build_engines ./build_engines
COPY gateway ./gateway
COPY deploy ./deploy
# Editable, so that `gateway migrate` finds alembic.ini and migrations/ beside the code.
RUN pip install --no-deps -e . \
    && pip check \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin gateway \
    && mkdir -p /var/lib/llm-gateway && chown gateway /var/lib/llm-gateway

USER 10001
ENV GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    GATEWAY_USAGE_JOURNAL_DIR=/var/lib/llm-gateway/usage-journal
EXPOSE 8080 9464
HEALTHCHECK --interval=10s --timeout=3s CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENTRYPOINT ["gateway"]
CMD ["serve"]
