"""After a run is final (pure): the report, JUnit XML, webhook payloads, the outbox and the rollback
decision.
"""
