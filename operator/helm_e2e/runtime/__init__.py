"""Starting and running the operator: settings, logging, metrics, the kopf wiring, leader election, shards,
schedules.
"""
