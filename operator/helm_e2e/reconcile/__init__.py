"""The shell of the operator: release Secrets in, E2ERuns out; each pass applies the core's typed actions."""
