"""Read the GitOps objects a deploy belongs to: a Flux HelmRelease, one GET, only for a release whose
objects carry Flux's labels (never a watch or a LIST); an Argo CD Application (a GET when a run of its sync
is planned again; its events come from kopf's watch); whether the Application API is served (docs/gitops.md).

404 (no such HelmRelease, or no helm.toolkit.fluxcd.io API in this cluster) and 403 (the operator may not
read it: RBAC per namespace) are None: the release is then tested as if Flux ran no tests of its own.
Every other API error is an `errors.KubeError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kubernetes.client as k8s
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from helm_e2e.clients.apierror import Body, api_error, call
from helm_e2e.clients.apierror import status_of as _status
from helm_e2e.core.model import names

ABSENT = frozenset({403, 404})


class GitOpsReader:
    def __init__(self, api_client: k8s.ApiClient, *, timeout_seconds: float = 10.0) -> None:
        self.custom = k8s.CustomObjectsApi(api_client)
        self.timeout = timeout_seconds

    async def get_helm_release(self, namespace: str, name: str) -> Body | None:
        """The Flux HelmRelease (helm.toolkit.fluxcd.io/v2), or None when it cannot be read."""
        return await self._get_or_absent(
            self.custom.get_namespaced_custom_object,
            names.FLUX_GROUP,
            names.FLUX_VERSION,
            namespace,
            names.FLUX_HELM_RELEASES,
            name,
        )

    async def get_application(self, namespace: str, name: str) -> Body | None:
        """The Argo CD Application (argoproj.io/v1alpha1), or None when it cannot be read."""
        return await self._get_or_absent(
            self.custom.get_namespaced_custom_object,
            names.ARGOCD_GROUP,
            names.ARGOCD_VERSION,
            namespace,
            names.ARGOCD_APPLICATIONS,
            name,
        )

    async def _get_or_absent(self, get: Callable[..., Any], *args: str) -> Body | None:
        try:
            body: Body = await call(get, *args, request_timeout=self.timeout)
        except ApiException as e:
            if _status(e) in ABSENT:
                return None
            raise api_error(e) from e
        return body


def argocd_api_served(api_client: k8s.ApiClient, *, timeout_seconds: float = 10.0) -> bool:
    """Whether the cluster serves applications.argoproj.io (discovery, readable by every user), at start."""
    discovery = k8s.CustomObjectsApi(api_client)
    try:
        found = discovery.get_api_resources(
            names.ARGOCD_GROUP, names.ARGOCD_VERSION, _request_timeout=timeout_seconds
        )
    except (ApiException, urllib3.exceptions.HTTPError, OSError):  # absent, or no answer: not served
        return False
    return any(r.name == names.ARGOCD_APPLICATIONS for r in found.resources or [])
