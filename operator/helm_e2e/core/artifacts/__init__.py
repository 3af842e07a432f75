"""Artifacts (pure): the collector sidecar, store keys and the checks of uploaded tar headers."""
