"""The helm-e2e pytest plugin (entry point `pytest11: helm_e2e`)."""
