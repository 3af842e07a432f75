# helm-e2e operator image. Multi-stage: build a virtualenv with only the runtime dependencies, copy it into
# a clean slim base, run as a non-root user. PYTHON_IMAGE is a build argument so air-gapped builds can pass
# a locally mirrored base.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN /opt/venv/bin/pip install --no-cache-dir .

FROM ${PYTHON_IMAGE}
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 65532:65532
# 8080: kopf's liveness endpoint (enabled by the chart's --liveness argument); 9090: Prometheus metrics
EXPOSE 8080 9090
ENTRYPOINT ["helm-e2e"]
CMD ["run"]
