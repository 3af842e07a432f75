"""Planning (pure): a release's chart test hooks and E2ESuites become planned tests, pods and the readiness
gate.
"""
