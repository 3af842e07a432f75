"""Argo CD Applications as Argo CD's controller writes them, and a controller whose namespace `shop` has a
suite selecting the application `web` (the intake and re-run tests of reconcile/application_*.py)."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from fake_kube import NOW, Clock, FakeKube

from helm_e2e.reconcile.controller import Controller
from helm_e2e.settings import Settings

SHA = "0b1e5d3c0a6f4e2b9c8d7e6f5a4b3c2d1e0f9a8b"


def application(
    *, history: int = 1, health: str = "Healthy", phase: str = "Succeeded", tag: str = "1.0.0", **dest: str
) -> dict[str, Any]:
    """An Application as Argo CD's controller writes it (argoproj.io/v1alpha1)."""
    deployed = (NOW - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "web", "namespace": "argocd", "uid": "app-uid", "labels": {"team": "shop"}},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": "https://git.example.com/shop.git",
                "path": "charts/web",
                "targetRevision": "main",
                "helm": {
                    "parameters": [{"name": "image.tag", "value": tag}],
                    "valuesObject": {"replicas": 2},
                },
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop", **dest},
        },
        "status": {
            "sync": {"status": "Synced", "revision": SHA},
            "health": {"status": health},
            "history": [
                {"id": i, "revision": SHA, "deployedAt": deployed, "deployStartedAt": deployed}
                for i in range(1, history + 1)
            ],
            "operationState": {"phase": phase, "finishedAt": deployed, "syncResult": {"revision": SHA}},
            "summary": {"images": ["registry.example.com/shop/web:0.9.0"]},
            "resources": [
                {"kind": "Deployment", "name": "web", "namespace": "shop", "health": {"status": health}}
            ],
        },
    }


SUITE = {
    "metadata": {"name": "api", "generation": 1},
    "spec": {
        "applications": {"names": ["web"]},
        "tests": [
            {"name": "api", "template": {"containers": [{"name": "t", "image": "e2e:{{ image_tag }}"}]}}
        ],
    },
}


def controller(kube: FakeKube, clock: Clock) -> Controller:
    kube.suites["shop"] = [copy.deepcopy(SUITE)]
    return Controller(settings=Settings(smtp_host="", resync_seconds=5), kube=kube, clock=clock)
