"""helm-e2e: run a Helm release's end-to-end tests after every install, upgrade and rollback.

Layers (enforced by import-linter, see pyproject.toml):
  core/      pure decisions and rendering over pydantic models; no I/O
  adapters/  effects: Kubernetes API, SMTP, metrics
  handlers   kopf wiring; each handler calls core, then adapters
  cli        `helm-e2e run | wait | junit | logs`
"""

__version__ = "0.1.0"
