"""What the readiness gate waits for: the objects `list_rollout_objects` takes from a release's manifest (the
kinds that can block, custom resources, other namespaces), real Helm manifests, and hostile or broken ones
refused without quoting them (split from test_readiness.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from repo_paths import GOLDEN_RELEASES as GOLDEN

from helm_e2e.core.plan.readiness import (
    MAX_DOCUMENTS,
    ObjectKey,
    list_rollout_objects,
)
from helm_e2e.core.sources.helm_secret import decode_release_secret
from helm_e2e.core.sources.manifest import manifest_fields
from helm_e2e.errors import ReleaseDecodeError

NS = "shop"


CUSTOM = """
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: tls}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: api}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
---
apiVersion: example.com/v1
kind: ConfigMap
metadata: {name: lookalike}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
"""


def test_custom_resources_are_waited_for_and_built_in_kinds_without_rules_are_not() -> None:
    refs = [k.ref for k in list_rollout_objects(CUSTOM, namespace=NS)]
    assert refs == ["certificate/tls", "service/api", "configmap/lookalike", "gateway/gw"]


MANIFEST = """
---
# Source: shop/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {password: hunter2}
---
# Source: shop/templates/deploy.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: shop}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {type: ClusterIP}
---
apiVersion: v1
kind: Service
metadata: {name: lb}
spec: {type: LoadBalancer}
---
apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: elsewhere, namespace: other}
---
# only a comment: Helm leaves these for templates rendered empty
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
"""


def test_lists_the_kinds_that_can_block_in_manifest_order_in_the_release_namespace() -> None:
    refs = [(k.ref, k.namespace) for k in list_rollout_objects(MANIFEST, namespace=NS)]
    assert refs == [("deployment/web", NS), ("pvc/data", NS), ("service/lb", NS), ("job/migrate", NS)]


def test_objects_in_other_namespaces_are_kept_only_when_asked() -> None:
    keys = list_rollout_objects(MANIFEST, namespace=NS, other_namespaces=True)
    assert ObjectKey("StatefulSet", "apps/v1", "other", "elsewhere") in keys


TRICKY = """
apiVersion: apps/v1
kind: Deployment
metadata:
  labels: {name: not-this, namespace: nor-this}
  "name": 'web'
spec:
  type: LoadBalancer
  template:
    metadata: {name: not-the-pod-template, namespace: elsewhere}
    kind: Job
  ? [complex, key]
  : {kind: Pod, metadata: {name: nope}}
---
- apiVersion: v1
  kind: Pod
  metadata: {name: a-list-is-not-an-object}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data:
  inner.yaml: |
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: not-a-real-object}
---
apiVersion: v1
kind: Pod
metadata: {name: lonely, anchored: &a 1}
---
kind: Pod
metadata: {name: no-api-version}
---
apiVersion: v1
kind: Pod
metadata: {name: {not: a-string}}
"""


def test_reads_only_top_level_fields_whatever_nests_below_them() -> None:
    refs = [k.ref for k in list_rollout_objects(TRICKY, namespace=NS)]
    assert refs == ["deployment/web", "pod/lonely"]


@pytest.mark.parametrize(
    ("manifest", "reason"),
    [
        ("a: &x [1, 2]\nb: *x\n", r"uses a YAML alias \(line 3\)"),
        ("kind: [unclosed\n", "not valid YAML at line"),
        ("---\n{}\n" * (MAX_DOCUMENTS + 1), f"more than {MAX_DOCUMENTS} documents"),
        ("#" * (8 * 2**20 + 1), "larger than"),
    ],
    ids=["alias", "syntax", "documents", "bytes"],
)
def test_refuses_a_manifest_that_is_hostile_or_broken_without_quoting_it(manifest: str, reason: str) -> None:
    with pytest.raises(ReleaseDecodeError, match=reason) as info:
        list_rollout_objects("secret: value-xyz\n" + manifest, namespace=NS)
    assert "value-xyz" not in str(info.value)


@pytest.mark.parametrize(
    "path", sorted(GOLDEN.glob("*.secret.json")), ids=lambda p: p.name.split(".secret")[0]
)
def test_real_helm_manifests_parse_and_a_configmap_only_release_has_nothing_to_wait_for(path: Path) -> None:
    release = decode_release_secret(json.loads(path.read_text()))
    assert "kind: ConfigMap" in release.manifest
    assert list_rollout_objects(release.manifest, namespace=release.namespace) == []


def test_manifest_fields_reads_any_wanted_paths_and_nothing_else() -> None:
    text = "a:\n  b:\n    c: deep\n    d: [x]\n  e: no\n---\nplain scalar\n---\n- a\n"
    wanted = frozenset({("a", "b", "c"), ("a", "b", "d"), ("z",)})
    assert list(manifest_fields(text, wanted=wanted, max_documents=3)) == [{("a", "b", "c"): "deep"}, {}, {}]


def test_documents_of_kinds_that_never_block_are_skipped_before_the_yaml_scan() -> None:
    configmaps = "".join(
        f"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n" for i in range(6000)
    )
    flow = '---\n{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "flow"}}\n'
    manifest = configmaps + "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n" + flow
    keys = list_rollout_objects(manifest, namespace="shop")  # more documents than MAX_DOCUMENTS: none parsed
    assert [k.ref for k in keys] == ["deployment/web", "deployment/flow"]
