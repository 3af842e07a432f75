"""Where deploys come from (pure): Helm release Secrets, their manifests, Flux HelmReleases and Argo CD
Applications.
"""
