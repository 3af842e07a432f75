"""Effects: the Kubernetes API, `helm`, SMTP, webhooks over HTTP, Prometheus metrics and the decode sandbox.
No kopf here.
"""
