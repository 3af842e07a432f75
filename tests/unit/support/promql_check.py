"""PromQL written for the operator's metrics (dashboard panels, alert rules) checked against the metrics.

Queries are parsed by a real PromQL parser (promql-parser, the Rust parser's Python bindings); every
vector selector must name a series the operator exports (`helm_e2e_*` with the suffixes prometheus_client
gives each type) or one Prometheus makes itself (`up`); every label matcher must name a label the metric
has or one the scrape adds; and a matcher on an enumerated label (phase, result, trigger) may only name
values the operator really sets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import promql_parser
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from helm_e2e.clients import metrics
from helm_e2e.core.model import names
from helm_e2e.core.model.release import Trigger
from helm_e2e.core.model.run_status import RunPhase, TestPhase

# labels the scrape adds to every series (Prometheus target labels, ServiceMonitor relabelling)
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "service", "container", "endpoint"})
# series Prometheus makes itself for every target
SCRAPE_SERIES = {"up": frozenset()}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}
# report outcomes (the EmailSent condition's reasons)
MAIL_RESULTS = frozenset(
    {str(v) for k, v in vars(names).items() if k.startswith("MAIL_")}
    | {"OnlyOnFailure", "NoRecipients", "NotReported"}
)
# enumerated label values the operator sets: (series, label) -> values
LABEL_VALUES = {
    ("helm_e2e_runs_total", "phase"): frozenset(RunPhase),
    ("helm_e2e_tests_total", "phase"): frozenset(TestPhase),
    ("helm_e2e_triggered_runs_total", "trigger"): frozenset(Trigger),
    ("helm_e2e_emails_total", "result"): MAIL_RESULTS,
}
# Grafana's interval variables, replaced by a duration so the query parses as PromQL
GRAFANA_DURATIONS = re.compile(r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}")
GRAFANA_LABEL_VALUES = re.compile(r"^label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*(\w+)\s*\)$")
PLAIN_ALTERNATION = re.compile(r"^\w+(\|\w+)*$")


@dataclass(frozen=True)
class Selector:
    """One vector selector of a query: the series name and its label matchers (label, op, value)."""

    name: str
    matchers: tuple[tuple[str, str, str], ...]


def exported_series() -> dict[str, frozenset[str]]:
    """Every series name the process exports (the default registry: the operator's metrics plus
    prometheus_client's process/platform collectors) -> the label names it carries."""
    labels = {
        m._name: frozenset(m._labelnames)  # the metric objects keep their label names only privately
        for m in vars(metrics).values()
        if isinstance(m, MetricWrapperBase)
    }
    series: dict[str, frozenset[str]] = {}
    for family in REGISTRY.collect():
        for suffix in SUFFIXES.get(family.type, ("",)):
            name = family.name + suffix
            extra = frozenset({"le"}) if suffix == "_bucket" else frozenset()
            series[name] = labels.get(family.name, frozenset()) | extra
    return series


def parse(expr: str) -> promql_parser.Expr:
    """Parse a query (Grafana interval variables replaced by 5m); raise ValueError with the parser's reason."""
    try:
        return promql_parser.parse(GRAFANA_DURATIONS.sub("5m", expr))
    except ValueError as e:
        raise ValueError(f"invalid PromQL ({e}): {expr}") from e


def selectors(expr: str) -> list[Selector]:
    found: list[Selector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = tuple((m.name, str(m.op).rsplit(".", 1)[-1], m.value) for m in node.matchers.matchers)
            name = node.name or next(
                (v for label, op, v in matchers if label == "__name__" and op == "Equal"), ""
            )
            found.append(Selector(name, tuple(m for m in matchers if m[0] != "__name__")))

    promql_parser.walk(parse(expr), visit)
    return found


def problems(expr: str, series: dict[str, frozenset[str]] | None = None) -> list[str]:
    """What is wrong with `expr` against the exported series (empty: nothing)."""
    known = {**SCRAPE_SERIES, **(series if series is not None else exported_series())}
    found: list[str] = []
    for sel in selectors(expr):
        if sel.name not in known:
            found.append(f"{sel.name or '(no metric name)'} is not an exported series")
            continue
        for label, op, value in sel.matchers:
            if label not in known[sel.name] | TARGET_LABELS:
                found.append(f"{sel.name} has no label {label}")
            allowed = LABEL_VALUES.get((sel.name, label))
            if allowed is None or op not in ("Equal", "Re") or not PLAIN_ALTERNATION.match(value):
                continue
            for v in set(value.split("|")) - allowed:
                found.append(f"{sel.name}{{{label}}} is never {v!r} (values: {', '.join(sorted(allowed))})")
    return found


def label_values_query(query: str) -> str:
    """The PromQL selector of a Grafana `label_values(metric, label)` variable query."""
    match = GRAFANA_LABEL_VALUES.match(query.strip())
    if match is None:
        raise ValueError(f"not a label_values(metric, label) query: {query}")
    return match.group(1)
