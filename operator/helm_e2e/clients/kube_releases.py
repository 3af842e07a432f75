"""The Kube adapter's reads of Helm's release Secrets (labels only, as metadata lists) and of the
ServiceAccounts marked for tests."""

from __future__ import annotations

from kubernetes.client.exceptions import ApiException

from helm_e2e.clients.apierror import Body, api_error
from helm_e2e.clients.apierror import status_of as _status
from helm_e2e.clients.kube_calls import KubeCalls
from helm_e2e.core.model import names
from helm_e2e.core.sources.intake import installed_revisions

# a LIST answered as PartialObjectMetadataList: the items' metadata, no data (same RBAC verb: list)
METADATA_ONLY = {"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"}


class ReleaseCalls(KubeCalls):
    # --- Helm release secrets and service accounts ------------------------------------------------------
    async def get_secret(self, namespace: str, name: str) -> Body | None:
        try:
            secret: Body = await self._raw(self.core.read_namespaced_secret, name, namespace)
        except ApiException as e:
            if _status(e) == 404:
                return None
            raise api_error(e) from e
        return secret

    async def _helm_secret_labels(self, namespace: str, selector: str) -> list[dict[str, str]]:
        """Labels of Helm's release Secrets matching `selector` (server-side selectors). The apiserver
        answers with their metadata only: a release's payloads (up to 1 MiB per revision, and every release
        of the namespace for `list_release_names`) are never sent, parsed or held for a list of labels.
        (An empty PartialObjectMetadataList has `"items": null`.)"""
        owner = f"{names.HELM_OWNER_LABEL}={names.HELM_OWNER}"
        try:
            result = await self._raw(
                self.core.list_namespaced_secret,
                namespace,
                label_selector=f"{owner},{selector}" if selector else owner,
                field_selector=f"type={names.HELM_SECRET_TYPE}",
                _headers=METADATA_ONLY,
            )
        except ApiException as e:
            raise api_error(e) from e
        return [dict(s["metadata"].get("labels") or {}) for s in result.get("items") or []]

    async def release_secret_labels(self, namespace: str, release: str) -> list[dict[str, str]]:
        """Labels (owner, name, status, version) of each stored revision of a release."""
        return await self._helm_secret_labels(namespace, f"{names.HELM_NAME_LABEL}={release}")

    async def list_release_names(self, namespace: str) -> list[str]:
        """The names of the Helm releases stored in a namespace (scheduled suites re-verify them)."""
        labels = await self._helm_secret_labels(namespace, "")
        return sorted({lab[names.HELM_NAME_LABEL] for lab in labels if lab.get(names.HELM_NAME_LABEL)})

    async def count_release_secrets(self, namespace: str, release: str) -> int:
        """How many revisions of a release are still installed (0 = uninstalled)."""
        return installed_revisions(await self.release_secret_labels(namespace, release))

    async def list_test_accounts(self, namespace: str) -> frozenset[str]:
        """ServiceAccounts a namespace admin marked for tests (label helm-e2e.dev/test-account=true), from
        kopf's watch of them once a LIST primed the namespace."""
        index = self.cache.accounts if self.cache is not None else None
        accounts = await self._list_through(
            index,
            namespace,
            lambda: self._raw(
                self.core.list_namespaced_service_account,
                namespace,
                label_selector=names.TEST_ACCOUNT_SELECTOR,
            ),
        )
        return frozenset(str(a["metadata"]["name"]) for a in accounts)
