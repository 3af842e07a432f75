"""Effects: the Kubernetes API (kube), SMTP (mail) and Prometheus (metrics). No kopf here."""
