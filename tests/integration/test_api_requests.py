"""A run's reconciles read the run and its pods from the watch cache: a long test costs no API reads per
resync (before the cache, every pass - each second here - was a GET of the run and a LIST of its pods).

The operator's own requests are counted from its log (the Kubernetes client's request lines at DEBUG):
the apiserver's counters are everyone's, and a namespace being deleted beside this test LISTs pods too."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from harness import ROOT, Cluster, MailSink, smtp_server, wait_until
from kubernetes import client as k8s
from kubernetes.config import new_client_from_config
from test_operator import wait_run

from helm_e2e.reconcile.release_checks import CHECK_DELAY_SECONDS

TINY = str(ROOT / "tests" / "data" / "charts" / "tiny")
SECONDS = 8


def reported_web_1(custom: Any, namespace: str, *, sent: bool) -> dict[str, Any] | None:
    """web-1 once Succeeded with its outbox's EmailSent condition (`sent`: True, the mail went), else None."""
    try:
        run: dict[str, Any] = custom.get_namespaced_custom_object(
            "helm-e2e.dev", "v1alpha1", namespace, "e2eruns", "web-1"
        )
    except k8s.ApiException:
        return None
    email = {c["type"]: c for c in run.get("status", {}).get("conditions", [])}.get("EmailSent")
    done = email is not None and (not sent or email.get("status") == "True")
    return run if done and run["status"].get("phase") == "Succeeded" else None


def test_a_long_test_costs_a_fixed_number_of_reads_not_one_per_pass(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    op = start_operator(log_level="DEBUG")  # resync every second (the harness's setting)
    wait_until(lambda: "startup" in op.logs() and "succeeded" in op.logs(), what="operator up")
    custom = k8s.CustomObjectsApi(new_client_from_config(config_file=str(cluster.kubeconfig)))

    def finished() -> dict[str, Any] | None:
        return reported_web_1(custom, namespace, sent=False)

    started = time.monotonic()
    cluster.helm("install", "web", TINY, "-n", namespace, "--set", f"test.duration={SECONDS}s")
    wait_until(finished, timeout=90, interval=1.0, what="web-1 Succeeded and its outbox done")
    elapsed = time.monotonic() - started
    requests = re.findall(r'"GET (/\S+) HTTP', op.logs())
    gets = sum(
        path == f"/apis/helm-e2e.dev/v1alpha1/namespaces/{namespace}/e2eruns/web-1" for path in requests
    )
    pods = f"/api/v1/namespaces/{namespace}/pods?labelSelector="
    lists = sum(path.startswith(pods) and path.endswith("run%3Dweb-1") for path in requests)
    print(f"GET e2eruns {gets}, LIST pods {lists} in {elapsed:.0f} s")
    assert elapsed >= SECONDS  # the run was active for at least this many one-second resyncs
    # the intake's existence check, then one pass after the report's outcome (a settled run is not cached);
    # one more for a conflict
    assert gets <= 3, f"GET e2eruns {gets} in {elapsed:.0f} s"
    # the priming LIST, then the same pass
    assert lists <= 3, f"LIST pods {lists} in {elapsed:.0f} s"


def test_a_namespaces_suites_and_test_accounts_are_listed_once_then_followed_from_the_watches(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    """After the first plan in a namespace, what the next plans read comes from kopf's watches: a suite
    created, a test account labelled (then unlabelled), a suite deleted, each right before an upgrade, are
    what that upgrade's run plans with; the namespace's suites and accounts were listed once."""
    op = start_operator(log_level="DEBUG")
    cluster.kubectl("create", "serviceaccount", "tester", "-n", namespace)
    cluster.helm("install", "web", TINY, "-n", namespace)
    assert wait_run(cluster, namespace, "web-1")["status"]["phase"] == "Succeeded"  # primes the namespace

    tests = [
        {"name": "as-tester", "template": {"serviceAccountName": "tester", "containers": [CONTAINER]}},
        {"name": "plain", "template": {"containers": [CONTAINER]}},
    ]
    suite = {"apiVersion": "helm-e2e.dev/v1alpha1", "kind": "E2ESuite", "metadata": {"name": "extra"}}
    cluster.apply(
        json.dumps({**suite, "spec": {"releases": {"charts": ["tiny"]}, "tests": tests}}), namespace
    )
    cluster.kubectl("label", "serviceaccount", "tester", "-n", namespace, f"{LABEL}=true")
    cluster.helm("upgrade", "web", TINY, "-n", namespace)
    assert outcomes(wait_run(cluster, namespace, "web-2")) == {
        "web-smoke": "Succeeded",
        "as-tester": "Succeeded",  # the label's event reached the plan
        "plain": "Succeeded",  # so did the suite's
    }

    cluster.kubectl("label", "serviceaccount", "tester", "-n", namespace, f"{LABEL}-")
    cluster.helm("upgrade", "web", TINY, "-n", namespace)
    third = outcomes(wait_run(cluster, namespace, "web-3"), reasons=True)
    assert third["as-tester"] == "Error/PolicyViolation"  # no longer a test account: a DELETED event

    cluster.kubectl("delete", "e2esuite", "extra", "-n", namespace)
    cluster.helm("upgrade", "web", TINY, "-n", namespace)
    assert outcomes(wait_run(cluster, namespace, "web-4")) == {"web-smoke": "Succeeded"}

    requests = re.findall(r'"GET (/\S+) HTTP', op.logs())
    suites = sum(
        p.startswith(f"/apis/helm-e2e.dev/v1alpha1/namespaces/{namespace}/e2esuites") for p in requests
    )
    accounts = sum(p.startswith(f"/api/v1/namespaces/{namespace}/serviceaccounts?") for p in requests)
    print(f"LIST e2esuites {suites}, LIST serviceaccounts {accounts} for 4 runs")
    # one each (a second only if a minute passed without an event: the cache's max age)
    assert suites <= 2, suites
    assert accounts <= 2, accounts


CONTAINER = {"name": "t", "image": "localhost/e2e:1"}
LABEL = "helm-e2e.dev/test-account"


def outcomes(run: dict[str, Any], *, reasons: bool = False) -> dict[str, str]:
    return {
        t["name"]: f"{t['phase']}/{t.get('reason', '')}" if reasons else t["phase"]
        for t in run["status"]["tests"]
    }


REQUEST = re.compile(r'"(GET|POST|PUT|PATCH|DELETE) (/[^?\s]*)(\?\S*)? HTTP')
MAX_REQUESTS_PER_RUN = 8
PER_NAMESPACE = (
    "GET /apis/helm-e2e.dev/v1alpha1/namespaces/NS/e2esuites",
    "GET /api/v1/namespaces/NS/serviceaccounts",
)


def test_a_one_test_run_costs_at_most_eight_requests(
    cluster: Cluster, namespace: str, start_operator: Any, unused_tcp_port: int
) -> None:
    """Every request the operator's Kubernetes client made for a one-test run, from `helm install` until the
    run Succeeded and its report was mailed and recorded (docs/performance.md lists each and why it is
    needed): at most 8 for the run, plus at most one LIST of the namespace's suites and of its test accounts
    (once per namespace). Counted from the operator's own log: the apiserver's counters are everyone's."""
    with smtp_server(MailSink(), port=unused_tcp_port) as sink:
        op = start_operator(
            log_level="DEBUG",
            smtp_host="127.0.0.1",
            smtp_port=str(unused_tcp_port),
            mail_to="dev@example.com",
        )
        breakdown = _one_run(cluster, namespace, op)
        assert len(sink.messages) == 1
    print(f"{sum(breakdown.values())} requests:")
    for key, count in sorted(breakdown.items()):
        print(f"  {count} {key}")
    # what a plan reads of the namespace is listed once per namespace, then followed from the watches (the
    # second test above): the first run of a namespace pays it, the next ones within a minute do not
    namespace_priming = {k: breakdown.pop(k, 0) for k in PER_NAMESPACE}
    assert all(count <= 1 for count in namespace_priming.values()), namespace_priming
    assert sum(breakdown.values()) <= MAX_REQUESTS_PER_RUN, breakdown


def _one_run(cluster: Cluster, namespace: str, op: Any) -> dict[str, int]:
    """The operator's requests, by method and path, from `helm install` until web-1 Succeeded and its
    report's outcome was written."""
    # kopf's watch of Secrets listing: a revision found by a listing (a start) is asked for first (a GET),
    # a live one is created at once. The install comes after the start, as it does in a cluster
    wait_until(lambda: "watch-stream for secrets" in op.logs(), what="the operator watching Secrets")
    time.sleep(2)
    custom = k8s.CustomObjectsApi(new_client_from_config(config_file=str(cluster.kubeconfig)))

    def finished() -> dict[str, Any] | None:
        return reported_web_1(custom, namespace, sent=True)

    before = len(REQUEST.findall(op.logs()))  # the operator's start (its watches' namespaces, CRDs)
    cluster.helm("install", "web", TINY, "-n", namespace)
    wait_until(finished, timeout=90, interval=0.5, what="web-1 Succeeded and its outbox done")
    time.sleep(3)  # anything the last write still set off
    requests = REQUEST.findall(op.logs())[before:]
    breakdown: dict[str, int] = {}
    for method, path, _ in requests:
        key = f"{method} {path.replace(namespace, 'NS')}"
        breakdown[key] = breakdown.get(key, 0) + 1
    return breakdown


def test_an_upgrade_reads_none_of_the_releases_secrets_and_a_hand_deletion_still_cancels(
    cluster: Cluster, namespace: str, start_operator: Any
) -> None:
    """The superseded revision leaves the watch as DELETED still labelled `deployed` (the apiserver sends
    the object as it was): the question "is the release still installed?" waits for the new revision, which
    answers it; only a deployed revision deleted by hand costs the LIST (reconcile/release_checks.py)."""
    op = start_operator(log_level="DEBUG")
    wait_until(lambda: "watch-stream for secrets" in op.logs(), what="the operator watching Secrets")

    def secret_reads() -> list[str]:
        prefix = f"/api/v1/namespaces/{namespace}/secrets"
        return [path for method, path, _ in REQUEST.findall(op.logs()) if method == "GET" and path == prefix]

    cluster.helm("install", "web", TINY, "-n", namespace)
    wait_run(cluster, namespace, "web-1")
    cluster.helm("upgrade", "web", TINY, "-n", namespace, "--set", "test.duration=60s")
    wait_run(cluster, namespace, "web-2", phases=("Running",))
    time.sleep(CHECK_DELAY_SECONDS + 1)  # a check that were waiting would have run by now
    assert secret_reads() == []
    cluster.kubectl("delete", "secret", "-n", namespace, "-l", "owner=helm,name=web")
    run = wait_run(cluster, namespace, "web-2", timeout=CHECK_DELAY_SECONDS + 30)
    assert run["status"]["phase"] == "Cancelled"
    assert len(secret_reads()) == 1
