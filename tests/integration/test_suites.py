"""E2ESuites: tests outside the chart, rendered with the release's image tag, init containers intact."""

from __future__ import annotations

import json
from typing import Any

from harness import ROOT, Cluster, wait_until
from test_operator import wait_run

DEMO = str(ROOT / "charts" / "examples" / "demo-service")
EXAMPLE_SUITE = ROOT / "charts" / "examples" / "demo-e2esuite.yaml"


def suite_condition(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    body = cluster.try_get_json("e2esuite", "-n", namespace, name) or {}
    return next((c for c in body.get("status", {}).get("conditions", []) if c["type"] == "Valid"), None)


def test_example_suite_runs_with_the_upgraded_image_tag_and_its_jwt_init_container(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    start_operator()
    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLE_SUITE))
    cluster.helm("install", "demo", DEMO, "-n", namespace, "--set", "image.tag=1.0.0")
    first = wait_run(cluster, namespace, "demo-1")
    assert [t["name"] for t in first["spec"]["tests"]] == ["demo-health", "api"]

    cluster.helm("upgrade", "demo", DEMO, "-n", namespace, "--set", "image.tag=1.1.0")
    run = wait_run(cluster, namespace, "demo-2")
    assert run["spec"]["release"]["imageTag"] == "1.1.0"
    assert run["spec"]["tests"][1] == {
        "name": "api",
        "source": "suite/demo-api",
        "timeoutSeconds": 300,
        "kind": "Pod",
    }
    assert run["spec"]["report"]["to"] == ["demo-team@example.com"]
    assert run["status"]["phase"] == "Succeeded"
    assert {t["name"]: t["phase"] for t in run["status"]["tests"]} == {
        "demo-health": "Succeeded",
        "api": "Succeeded",
    }

    pod = cluster.get_json("pod", "-n", namespace, "demo-2-api")
    spec = pod["spec"]
    assert spec["containers"][0]["image"] == "localhost/demo-e2e:1.1.0"
    init = spec["initContainers"][0]
    assert init["image"] == "localhost/jwt-setup:0.1.0"
    assert "--issuer=helm-e2e/" + namespace + "/demo" in init["args"]
    assert "--claim=revision=2" in init["args"]
    assert {m["name"] for m in init["volumeMounts"]} == {"jwt-keys", "access-tokens"}
    assert spec["containers"][0]["volumeMounts"] == [
        {"name": "access-tokens", "mountPath": "/access_tokens", "readOnly": True}
    ]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["jwt-keys"]["secret"]["secretName"] == "demo-jwt-keys"
    assert volumes["access-tokens"]["emptyDir"] == {"medium": "Memory"}
    init_env = {e["name"]: e["value"] for e in init["env"]}
    assert init_env["HELM_E2E_IMAGE_TAG"] == "1.1.0"
    assert suite_condition(cluster, namespace, "demo-api")["status"] == "True"  # type: ignore[index]


def _suite(name: str, *, charts: list[str], image: str, annotations: dict[str, str] | None = None) -> str:
    return json.dumps(
        {
            "apiVersion": "helm-e2e.dev/v1alpha1",
            "kind": "E2ESuite",
            "metadata": {"name": name},
            "spec": {
                "releases": {"charts": charts},
                "tests": [
                    {
                        "name": name,
                        "metadata": {"annotations": annotations or {}},
                        "template": {"containers": [{"name": "t", "image": image}]},
                    }
                ],
            },
        }
    )


def test_suite_results_land_in_the_run_and_a_broken_suite_is_invalid_while_the_hook_still_runs(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    start_operator()
    cluster.apply(
        _suite(
            "failing",
            charts=["demo-service"],
            image="localhost/e2e:{{ image_tag }}",
            annotations={
                "sim.helm-e2e.dev/exit-code": "2",
                "sim.helm-e2e.dev/termination-message": '{"passed": 3, "failed": 1, "skipped": 0, "errors": 0, '
                '"firstFailures": ["tests/test_api.py::test_token_refresh"]}',
            },
        ),
        namespace,
    )
    cluster.apply(
        _suite("broken", charts=["demo-service"], image="localhost/e2e:{{ no_such_variable }}"), namespace
    )
    cluster.apply(_suite("elsewhere", charts=["another-chart"], image="localhost/other:1"), namespace)

    cluster.helm("install", "demo", DEMO, "-n", namespace, "--set", "image.tag=3.0.0")
    run = wait_run(cluster, namespace, "demo-1")

    assert [t["source"] for t in run["spec"]["tests"]] == ["hook", "suite/failing"]
    results = {t["name"]: t for t in run["status"]["tests"]}
    assert results["demo-health"]["phase"] == "Succeeded"
    failing = results["failing"]
    assert (failing["phase"], failing["exitCode"]) == ("Failed", 2)
    assert failing["pytest"]["failed"] == 1
    assert failing["pytest"]["firstFailures"] == ["tests/test_api.py::test_token_refresh"]
    assert run["status"]["phase"] == "Failed"

    broken = wait_until(
        lambda: suite_condition(cluster, namespace, "broken"), what="Valid condition on broken"
    )
    assert broken["status"] == "False"
    assert broken["reason"] == "TemplateError"
    assert "no_such_variable" in broken["message"]
    suite_events = cluster.get_json(
        "events", "-n", namespace, "--field-selector", "involvedObject.name=broken"
    )
    assert "TemplateError" in {e["reason"] for e in suite_events["items"]}
    assert (
        suite_condition(cluster, namespace, "elsewhere") in (None, {})
        or suite_condition(cluster, namespace, "elsewhere")["reason"] != "TemplateError"
    )  # type: ignore[index]


def test_a_suite_with_a_malformed_spec_is_rejected_by_the_crd_schema_with_a_clear_error(
    cluster: Cluster, namespace: str, crds: Cluster
) -> None:
    body = json.loads(_suite("schema", charts=[], image="x"))
    body["spec"]["tests"][0]["template"] = "not a pod spec"
    body["spec"]["triggers"] = ["deploy"]
    proc = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body), check=False)
    assert proc.returncode != 0
    assert "spec.tests[0].template" in proc.stderr
    assert "spec.triggers[0]" in proc.stderr
