"""The chart's monitoring integrations: Grafana dashboard, ServiceMonitor and PrometheusRule.

Every PromQL query (dashboard panels, variables, alert rules) is parsed by a real PromQL parser and must
read only series the operator exports, with labels and label values it really sets (tests/unit/
promql_check.py). The chart is rendered with the real `helm template`; a missing helm binary fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase
from promql_check import exported_series, label_values_query, parse, problems, selectors
from repo_paths import ROOT

from helm_e2e.clients import metrics

CHART = ROOT / "charts" / "helm-e2e"
DASHBOARD = CHART / "dashboards" / "helm-e2e.json"
ALERTS = {
    "HelmE2ERunFailed",
    "HelmE2EReportEmailFailing",
    "HelmE2EOperatorDown",
    "HelmE2EReconcileErrors",
    "HelmE2ETestPodsRefused",
    "HelmE2EArtifactStoreUnwritable",
    "HelmE2ERunsRefused",
}


def helm() -> str:
    cached = Path.home() / ".cache" / "helm-e2e" / "bin" / "current" / "helm"
    found = shutil.which("helm") or (str(cached) if os.access(cached, os.X_OK) else None)
    if found is None:
        pytest.fail(
            "no helm binary on PATH or in ~/.cache/helm-e2e/bin/current (make binaries)", pytrace=False
        )
    return found


def render(*sets: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    args = [a for s in sets for a in ("--set", s)]
    return subprocess.run(
        [helm(), "template", "ops", str(CHART), "-n", "ops", *args],
        check=check,
        capture_output=True,
        text=True,
        timeout=60,
    )


def docs(*sets: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(render(*sets).stdout) if d]


def one(kind: str, rendered: list[dict[str, Any]]) -> dict[str, Any]:
    (doc,) = [d for d in rendered if d["kind"] == kind]
    return doc


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def targets() -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in dashboard()["panels"] for t in p["targets"]]


def operator_metric_names() -> set[str]:
    return {m._name for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)}


# --- the checker itself can fail ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("sum(rate(helm_e2e_run_total[5m]))", "helm_e2e_run_total is not an exported series"),
        ("rate(helm_e2e_runs_bucket[5m])", "helm_e2e_runs_bucket is not an exported series"),
        ("helm_e2e_trigger_latency_seconds_total", "is not an exported series"),
        ('helm_e2e_emails_total{phase="Failed"}', "helm_e2e_emails_total has no label phase"),
        ('helm_e2e_runs_total{phase=~"Failed|Failure"}', "helm_e2e_runs_total{phase} is never 'Failure'"),
        ('helm_e2e_emails_total{result="Error"}', "helm_e2e_emails_total{result} is never 'Error'"),
        ('{__name__="helm_e2e_nope_total"}', "helm_e2e_nope_total is not an exported series"),
    ],
)
def test_checker_reports_queries_of_metrics_the_operator_does_not_export(expr: str, problem: str) -> None:
    assert any(problem in p for p in problems(expr)), problems(expr)


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("sum(rate(helm_e2e_runs_total[5m])", "unclosed left parenthesis"),
        ("helm_e2e_runs_total{phase=Failed}", ""),
        ("rate(helm_e2e_runs_total)", "expected type matrix"),  # types are checked too
        ("histogram_quantile(sum(helm_e2e_run_duration_seconds_bucket))", "expected 2 argument"),
        ("increase(helm_e2e_runs_total[5x])", "duration"),
        ("helm_e2e_runs_total[5m] > 0", "binary expression"),
    ],
)
def test_checker_rejects_invalid_promql(expr: str, reason: str) -> None:
    with pytest.raises(ValueError, match="invalid PromQL") as raised:
        parse(expr)
    assert reason in str(raised.value)


def test_checker_accepts_every_suffix_prometheus_client_exports() -> None:
    series = exported_series()
    for name in (
        "helm_e2e_runs_total",
        "helm_e2e_trigger_latency_seconds_bucket",
        "helm_e2e_trigger_latency_seconds_sum",
        "helm_e2e_trigger_latency_seconds_count",
        "helm_e2e_reconcile_errors_total",
        "helm_e2e_create_refused_total",
        "process_resident_memory_bytes",
    ):
        assert name in series
    assert "le" in series["helm_e2e_trigger_latency_seconds_bucket"]
    assert series["helm_e2e_emails_total"] == {"result"}
    assert problems('sum by (le) (rate(helm_e2e_run_duration_seconds_bucket{job="x",le="60"}[5m]))') == []


# --- Grafana dashboard ----------------------------------------------------------------------------------


def test_dashboard_has_the_grafana_essentials() -> None:
    d = dashboard()
    assert (d["uid"], d["title"]) == ("helm-e2e", "helm-e2e")
    assert isinstance(d["schemaVersion"], int)
    assert d["schemaVersion"] >= 36  # panel-level datasource objects
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = d["panels"]
    assert len(panels) >= 10
    assert len({p["id"] for p in panels}) == len(panels)
    for p in panels:
        assert p["title"]
        assert p["type"] in {"stat", "timeseries", "gauge", "bargauge", "table"}, p["title"]
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        grid = p["gridPos"]
        assert grid["x"] + grid["w"] <= 24, p["title"]
        assert p["targets"], p["title"]
        assert len({t["refId"] for t in p["targets"]}) == len(p["targets"]), p["title"]
        for t in p["targets"]:
            assert t["expr"].strip(), p["title"]
            assert t["datasource"] == p["datasource"], p["title"]


def test_panels_do_not_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for p in dashboard()["panels"]:
        g = p["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = p["title"]


@pytest.mark.parametrize(
    ("panel", "expr"), [pytest.param(p, e, id=f"{p} #{i}") for i, (p, e) in enumerate(targets())]
)
def test_every_panel_query_reads_metrics_the_operator_exports(panel: str, expr: str) -> None:
    assert problems(expr) == [], panel


def test_dashboard_variables_read_exported_metrics() -> None:
    for var in dashboard()["templating"]["list"]:
        if var["type"] == "query":
            metric = label_values_query(var["query"]["query"])
            assert problems(metric) == [], var["name"]
            assert var["definition"] == var["query"]["query"]


def test_every_operator_metric_has_a_panel() -> None:
    queried = {
        sel.name.removesuffix(suffix)
        for _, expr in targets()
        for sel in selectors(expr)
        for suffix in ("_total", "_bucket", "_sum", "_count", "")
        if sel.name.endswith(suffix)
    }
    missing = operator_metric_names() - queried
    assert not missing, (
        f"operator metrics without a panel in {DASHBOARD.relative_to(ROOT)}: {sorted(missing)}"
    )


def test_dashboard_filters_every_operator_query_by_the_job_variable() -> None:
    for panel, expr in targets():
        for sel in selectors(expr):
            assert ("job", "Re", "$job") in sel.matchers, f"{panel}: {sel.name}"


def test_dashboard_configmap_is_off_by_default() -> None:
    assert "ConfigMap" not in {d["kind"] for d in docs()}


def test_dashboard_configmap_carries_the_sidecar_label_and_the_dashboard() -> None:
    cm = one("ConfigMap", docs("dashboard.enabled=true"))
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["namespace"] == "ops"
    assert json.loads(cm["data"]["helm-e2e.json"]) == dashboard()


def test_dashboard_label_namespace_and_annotations_are_configurable() -> None:
    cm = one(
        "ConfigMap",
        docs(
            "dashboard.enabled=true",
            "dashboard.labelKey=grafana_dashboard_custom",
            "dashboard.labelValue=yes",
            "dashboard.namespace=monitoring",
            "dashboard.annotations.grafana_folder=Delivery",
        ),
    )
    assert cm["metadata"]["labels"]["grafana_dashboard_custom"] == "yes"
    assert "grafana_dashboard" not in cm["metadata"]["labels"]
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Delivery"}


# --- ServiceMonitor -------------------------------------------------------------------------------------


def test_service_monitor_is_off_by_default() -> None:
    assert "ServiceMonitor" not in {d["kind"] for d in docs()}


def metrics_service(rendered: list[dict[str, Any]]) -> dict[str, Any]:
    (doc,) = [d for d in rendered if d["kind"] == "Service" and d["metadata"]["name"].endswith("-metrics")]
    return doc


def test_service_monitor_selects_the_metrics_service_and_its_port() -> None:
    rendered = docs("serviceMonitor.enabled=true", "serviceMonitor.labels.release=kube-prometheus-stack")
    sm, service = one("ServiceMonitor", rendered), metrics_service(rendered)
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    others = [d for d in rendered if d["kind"] == "Service" and d is not service]
    assert others  # the artifacts Service: never scraped
    assert all(
        not sm["spec"]["selector"]["matchLabels"].items() <= d["metadata"]["labels"].items() for d in others
    )
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [service["metadata"]["namespace"]]}
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert (endpoint["path"], endpoint["interval"]) == ("/metrics", "30s")


def test_service_monitor_without_the_metrics_service_fails_to_render() -> None:
    proc = render("serviceMonitor.enabled=true", "metrics.service.enabled=false", check=False)
    assert proc.returncode != 0
    assert "serviceMonitor.enabled needs the metrics Service" in proc.stderr


# --- PrometheusRule -------------------------------------------------------------------------------------


def rules(*sets: str) -> list[dict[str, Any]]:
    rule = one("PrometheusRule", docs("prometheusRule.enabled=true", *sets))
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def test_prometheus_rule_is_off_by_default() -> None:
    assert "PrometheusRule" not in {d["kind"] for d in docs()}


def test_prometheus_rule_has_the_alerts_with_summaries() -> None:
    alerts = rules()
    assert {r["alert"] for r in alerts} == ALERTS
    for r in alerts:
        assert r["labels"]["severity"] == "warning", r["alert"]
        assert r["annotations"]["summary"], r["alert"]
        assert r["annotations"]["description"], r["alert"]


@pytest.mark.parametrize("alert", sorted(ALERTS))
def test_every_alert_expression_reads_metrics_the_operator_exports(alert: str) -> None:
    (rule,) = [r for r in rules() if r["alert"] == alert]
    assert problems(rule["expr"]) == []


def test_alerts_watch_the_job_the_service_monitor_scrapes() -> None:
    rendered = docs("prometheusRule.enabled=true", "serviceMonitor.enabled=true")
    # Prometheus Operator names the job after the scraped Service
    job = metrics_service(rendered)["metadata"]["name"]
    for r in one("PrometheusRule", rendered)["spec"]["groups"][0]["rules"]:
        sels = selectors(r["expr"])
        assert sels, r["alert"]
        assert all(("job", "Equal", job) in s.matchers for s in sels), r["alert"]
    (down,) = [r for r in rules() if r["alert"] == "HelmE2EOperatorDown"]
    assert down["expr"] == f'absent(up{{job="{job}",namespace="ops"}} == 1)'


def test_alert_labels_job_and_windows_are_configurable() -> None:
    alerts = {
        r["alert"]: r
        for r in rules(
            "prometheusRule.alertLabels.severity=critical",
            "prometheusRule.alertLabels.team=platform",
            "prometheusRule.job=helm-e2e",
            "prometheusRule.runFailedWindow=6h",
            "prometheusRule.operatorDownFor=10m",
        )
    }
    assert all(r["labels"] == {"severity": "critical", "team": "platform"} for r in alerts.values())
    assert "[6h]" in alerts["HelmE2ERunFailed"]["expr"]
    assert "offset 6h" in alerts["HelmE2ERunFailed"]["expr"]
    assert alerts["HelmE2EOperatorDown"]["for"] == "10m"
    assert all(
        ("job", "Equal", "helm-e2e") in s.matchers for s in selectors(alerts["HelmE2ERunFailed"]["expr"])
    )


def test_alert_durations_are_prometheus_durations() -> None:
    for r in rules():
        if "for" in r:
            assert promql_parser.parse_duration(r["for"]).total_seconds() >= 60, r["alert"]
    bad = {r["alert"]: r["expr"] for r in rules("prometheusRule.runFailedWindow=1 hour")}
    with pytest.raises(ValueError, match="invalid PromQL"):  # a bad window makes a bad expression
        parse(bad["HelmE2ERunFailed"])


def test_alert_annotations_keep_prometheus_templates_for_prometheus() -> None:
    (failed,) = [r for r in rules() if r["alert"] == "HelmE2ERunFailed"]
    assert "{{ $labels.phase }}" in failed["annotations"]["summary"]
    assert '{{ printf "%.0f" $value }}' in failed["annotations"]["description"]


def test_run_failed_alert_counts_failed_and_errored_runs_only() -> None:
    (failed,) = [r for r in rules() if r["alert"] == "HelmE2ERunFailed"]
    phases = {v for s in selectors(failed["expr"]) for label, _, v in s.matchers if label == "phase"}
    assert phases == {"Failed|Error"}


@pytest.mark.parametrize("section", ["dashboard", "serviceMonitor", "prometheusRule"])
def test_every_monitoring_value_is_documented_in_the_chart_readme(section: str) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())[section]
    readme = (CHART / "README.md").read_text()
    assert values["enabled"] is False  # opt-in: the Prometheus Operator's CRDs may not exist
    for key in values:
        assert f"`{section}.{key}`" in readme, f"{section}.{key} is not in the chart README's values table"
