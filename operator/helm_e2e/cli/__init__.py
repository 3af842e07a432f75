"""`helm-e2e`, the command line: run the operator, wait for a run, re-run, JUnit, logs, artifacts, the
viewer.
"""
