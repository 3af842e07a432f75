"""Results (pure): test pods and Jobs become TestResults, retries, diagnostics, pytest cases and
regressions.
"""
