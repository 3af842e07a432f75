"""helm-e2e: run a Helm release's end-to-end tests after every install, upgrade and rollback.

Layers, highest first (import-linter contracts in pyproject.toml; docs/architecture.md draws them):
  cli/        `helm-e2e run | wait | rerun | junit | logs | artifacts | ui`
  viewer/     `helm-e2e ui`, the read-only web viewer
  runtime/    start the operator: kopf wiring, leader election, shards, the schedule timer
  reconcile/  the shell: release Secrets -> E2ERuns, each run's pass applies the core's typed actions
  artifacts/  the artifacts server, its store, and the client of `helm-e2e artifacts`
  clients/    effects: Kubernetes API, helm, SMTP, webhooks, metrics, the decode sandbox
  settings    HELM_E2E_* settings, read once and passed down as plain arguments
  core/       pure decisions and rendering over pydantic models, by concern; no I/O
"""

__version__ = "0.1.0"
