# helm-e2e developer entry points. `make test` is what CI runs (via .ci/run).
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest
export PATH := $(HOME)/.cache/helm-e2e/bin/current:$(PATH)

.PHONY: docs help install binaries cluster-up cluster-down cluster-env node-preflight node-up node-down images lint unit coverage integration integration-helm4 realnode realnode-helm4 test bench bench-quick demo clean bench-hostile bench-readiness bench-scale bench-start-live bench-startup bench-trigger bench-kill bench-store bench-artifacts bench-idle bench-transport

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed ## editable install with the dev extra into .venv

binaries: ## build (once) and cache kube/etcd/kwok/helm binaries from the Go module proxy
	hack/build-binaries.sh

cluster-up: ## start (or reuse) the local control plane + kwok node
	hack/cluster.sh up

cluster-down: ## stop and remove the local cluster
	hack/cluster.sh down

cluster-env: ## print exports for KUBECONFIG and PATH: eval "$$(make -s cluster-env)"
	@hack/cluster.sh env

node-preflight: ## check whether this host can run a real node, and say what is missing
	hack/node.sh preflight

node-up: cluster-up ## add a real node (containerd + runc + kubelet + kube-proxy) with the project's images
	hack/node.sh up

node-down: ## stop the real node and leave the machine as it was (images stay cached)
	hack/node.sh down

images: ## build the project's images with buildah (no registry, no Docker engine) into the cache
	hack/images.sh all

lint: install ## ruff check, ruff format --check, mypy --strict, import-linter
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict operator/
	$(VENV)/bin/mypy --strict images/jwt-setup/jwt_setup images/pytest-runner/helm_e2e_pytest images/demo-service
	$(VENV)/bin/lint-imports
	$(MAKE) --no-print-directory docs

docs: install ## the documentation site from README.md + docs/ (mkdocs build --strict: a dead link fails) into out/site
	$(PY) hack/docs_index.py
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

unit: install ## unit tests (pure code, no cluster)
	$(PYTEST) tests/unit -q

coverage: install ## unit tests under coverage: a per-module report of operator/helm_e2e (lines missed)
	$(PYTEST) tests/unit -q --cov --cov-report=term-missing

integration: install cluster-up ## integration tests against the local cluster (real helm, kubectl, SMTP)
	$(PYTEST) tests/integration -q -m "not realnode and not bench"

realnode: install node-up ## the real tier: real containers on the real node (root; see make node-preflight)
	$(PYTEST) tests/integration -q -m realnode

# Helm 4 (hack/versions.sh HELM4_VERSION) as the CLI that installs, upgrades, tests the releases: the whole
# integration tier again (163 tests, ~15 min on 2 cores); the operator's `helm rollback` stays helm 3
# (HELM_E2E_HELM_BINARY), so rollback across majors is tested too. The real-node tier runs with Helm 4 in
# `make test` (realnode-helm4).
integration-helm4: install cluster-up ## the integration tier with Helm 4 installing/testing the releases
	hack/build-binaries.sh helm4
	HELM_E2E_TEST_HELM=helm4 $(PYTEST) tests/integration -q -m "not realnode and not bench"

realnode-helm4: install node-up ## the real tier with Helm 4 installing/testing the releases
	hack/build-binaries.sh helm4
	HELM_E2E_TEST_HELM=helm4 $(PYTEST) tests/integration -q -m realnode

test: lint coverage bench-quick integration integration-helm4 realnode-helm4 ## everything CI runs

bench: install cluster-up ## benchmarks: the pure core, then the readiness gate and hostile inputs on the local cluster; print numbers, never fail on timing
	$(PY) tests/bench/run.py
	$(PY) tests/bench/readiness.py
	$(PY) tests/bench/hostile.py
	$(PY) tests/bench/store.py
	$(PY) tests/bench/artifacts.py
	$(PY) tests/bench/viewer.py
	$(PY) tests/bench/idle.py
	$(PY) tests/bench/transport.py
	$(PYTEST) tests/integration -q -s -m bench

bench-quick: install cluster-up ## every benchmark once (CI: the bench cannot rot), numbers printed but meaningless
	BENCH_QUICK=1 $(PY) tests/bench/run.py
	$(PY) tests/bench/store.py
	BENCH_QUICK=1 $(PY) tests/bench/artifacts.py
	BENCH_QUICK=1 $(PY) tests/bench/viewer.py
	BENCH_QUICK=1 $(PY) tests/bench/start_live.py
	BENCH_QUICK=1 $(PY) tests/bench/idle.py
	BENCH_QUICK=1 $(PY) tests/bench/transport.py

demo: install cluster-up ## end to end: operator + SMTP sink + example chart install/upgrade
	$(PY) hack/demo.py

clean: ## remove the virtualenv (cached binaries stay in ~/.cache/helm-e2e)
	rm -rf $(VENV)

# --- chart packaging -------------------------------------------------------------------------------------
CHART_ALL_ON := --set dashboard.enabled=true --set serviceMonitor.enabled=true --set prometheusRule.enabled=true \
	--set 'watchNamespaces={a,b}' --set smtp.existingSecret=smtp --set smtp.caConfigMap=smtp-ca

.PHONY: package
package: ## helm lint --strict the operator chart (defaults, then every optional feature on); package into out/charts/
	helm lint --strict charts/helm-e2e
	helm lint --strict charts/helm-e2e $(CHART_ALL_ON)
	helm package charts/helm-e2e --destination out/charts

test: package

bench-readiness: install cluster-up ## the readiness gate: API calls and time per check, delay from rollout to first test pod
	$(PY) tests/bench/readiness.py

bench-hostile: install ## hostile inputs against the operator on the local cluster: peak RSS, time to outcome (BENCH_QUICK=1: one operator)
	$(PY) tests/bench/hostile.py

bench-scale: install cluster-up ## N releases (BENCH_SCALE_N=100) x H revisions, a burst of upgrades vs helm alone + kwok alone (BENCH_SCALE_NICE=1: helm niced): trigger latency, CPU and API requests per run, peak RSS
	$(PY) tests/bench/scale.py

bench-transport: install cluster-up ## CPU per API request of a run's own calls: aiohttp on the event loop vs the kubernetes client in a thread
	$(PY) tests/bench/transport.py

bench-trigger: install cluster-up ## 20 sequential upgrades (BENCH_TRIGGER_N) after a fresh start: trigger latency and the operator's intake timings
	$(PY) tests/bench/scale.py sequential

bench-start-live: install cluster-up ## live revisions during a start beside BENCH_SCALE_N x BENCH_SCALE_H (1,000 x 10) Helm Secrets: trigger latency, and runs finished under kill -9 every 1.5 s
	$(PY) tests/bench/start_live.py

bench-startup: install cluster-up ## an operator's start beside N x H Helm Secrets (BENCH_SCALE_N=100, BENCH_SCALE_H=3): listing time, CPU, peak and settled RSS
	$(PY) tests/bench/scale.py startup

bench-idle: install cluster-up ## the operator at rest: RSS of its imports, then VmRSS/VmHWM of `helm-e2e run` idle in an empty namespace and after one run (BENCH_QUICK=1: imports only)
	$(PY) tests/bench/idle.py

bench-store: install ## the artifact store, file:// and a local versitygw: time and peak RSS to put 50 MiB (1 tar.gz; 500 files), read 5 MiB (~5 s)
	$(PY) tests/bench/store.py

bench-kill: install cluster-up ## 5 releases x 4 revisions while the operator is SIGKILLed every 1.5 s: duplicate report e-mails (asserts 0 unexplained; ~2.5 min)
	$(PYTEST) tests/integration -q -s -m bench

bench-artifacts: install ## artifacts end to end: receive+store a 50 MiB set through the upload server, attach 5 MiB to a report (BENCH_QUICK=1: 5 MiB)
	$(PY) tests/bench/artifacts.py
