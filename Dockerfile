# helm-e2e operator image. Multi-stage: build a virtualenv with only the runtime dependencies, copy it into
# a clean slim base, run as a non-root user. PYTHON_IMAGE is a build argument so air-gapped builds can pass
# a locally mirrored base.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# helm for rollback on failure (HELM_E2E_ROLLBACK; `helm rollback` runs as a subprocess). Nothing is
# downloaded at build time: put a helm binary (linux, the image's architecture; v3.19.5 and v4.3.1 are tested,
# Helm 4 recommended: a Helm 3 rollback drops a Helm 4 release's apply_method, docs/development.md) into the
# build context and name it, e.g.
#   cp "$(command -v helm)" bin/helm && docker build --build-arg HELM_BINARY=bin/helm .
# hack/images.sh does exactly that with the helm it built. Without it the image carries bin/helm-missing,
# a stand-in that fails every rollback with a clear message (RolledBack=False/RollbackFailed).
ARG HELM_BINARY=bin/helm-missing

FROM scratch AS helm
ARG HELM_BINARY
COPY ${HELM_BINARY} /helm

FROM ${PYTHON_IMAGE} AS builder
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN /opt/venv/bin/pip install --no-cache-dir .

FROM ${PYTHON_IMAGE}
COPY --from=builder /opt/venv /opt/venv
COPY --from=helm /helm /usr/local/bin/helm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HELM_E2E_HELM_BINARY=/usr/local/bin/helm
USER 65532:65532
# 8080: kopf's liveness endpoint (enabled by the chart's --liveness argument); 9090: Prometheus metrics
EXPOSE 8080 9090
ENTRYPOINT ["helm-e2e"]
CMD ["run"]
