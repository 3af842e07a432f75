"""The pure core: release decoding, planning, results, report and JUnit rendering.

Contract: purely computational. Nothing here performs I/O or imports kopf, the Kubernetes client,
aiosmtplib, prometheus_client or anything from `helm_e2e.clients`; every function takes its inputs
(including "now") as arguments so it can be tested without a cluster.
"""
