// The release page: one row per revision (its newest run), the duration / pass-rate chart, the flaky
// tests and the regressions between revisions, from /api/v1/namespaces/{ns}/releases/{release}.
import { el, getJSON, phaseBadge, duration, timeEl, table, runHref, path } from "/static/app.js";
import { historyChart } from "/static/chart.js";

function rate(value) {
  return value === null || value === undefined ? "-" : `${Math.round(value * 100)}%`;
}

function revisionRow(r) {
  return el("tr", { "data-revision": r.revision },
    el("td", { class: "num" }, String(r.revision)),
    el("td", {}, el("a", { href: runHref(r.namespace, r.name) }, r.name)),
    el("td", {}, phaseBadge(r.phase)),
    el("td", { class: "num" }, `${r.summary.passed}/${r.summary.total}`),
    el("td", { class: "num" }, rate(r.passRate)),
    el("td", { class: "num" }, duration(r.durationSeconds)),
    el("td", {}, r.imageTag || "-"),
    el("td", { class: "commit" }, r.commit ? el("code", { title: r.commit }, r.commit.slice(0, 12)) : "-"),
    el("td", { class: "hide-narrow" }, r.appVersion || "-"),
    el("td", { class: "hide-narrow" }, r.chart),
    el("td", { class: "hide-narrow" }, r.request || r.trigger),
    el("td", { class: "num hide-narrow" }, String(r.attempts)),
    el("td", { class: "hide-narrow" }, timeEl(r.createdAt)));
}

function regressionItem(g) {
  const list = (label, keys) => keys.length
    ? [el("h4", {}, `${label} (${keys.length})`), el("ul", { class: "keys" }, keys.map((k) => el("li", {}, el("code", {}, k))))]
    : [];
  return el("section", { class: "test", "aria-label": `Revision ${g.revision}` },
    el("h3", {}, el("a", { href: runHref(g.namespace, g.run) }, `r${g.revision}`), ` against r${g.comparedRevision} (${g.comparedWith})`),
    ...list("Newly failing", g.newlyFailing), ...list("Fixed", g.fixed), ...list("Still failing", g.stillFailing));
}

export async function renderRelease(main, ns, release) {
  const last = new URLSearchParams(location.search).get("last") || "30";
  const h = await getJSON("/api/v1" + path("namespaces", ns, "releases", release) + "?last=" + encodeURIComponent(last));
  const parts = [el("h1", {}, `Release ${release}`), el("p", { class: "muted" }, `Namespace ${ns}; the last ${h.revisions.length} revisions (newest run of each).`)];
  if (h.truncated) parts.push(el("p", { class: "notice" }, "This release has more runs than the viewer reads at once; older ones are left out."));
  parts.push(el("h2", {}, "Duration and pass rate"), historyChart(h.series),
    el("p", { class: "legend" }, "Bars: run duration (green passed, red failed or error, grey other). Line: pass rate of the run's tests."));
  parts.push(el("h2", {}, "Revisions"), table("One row per revision", [
    { label: "Revision", cls: "num" }, "Run", "Phase", { label: "Passed", cls: "num" }, { label: "Pass rate", cls: "num" },
    { label: "Duration", cls: "num" }, "Image tag", "Commit", { label: "App version", cls: "hide-narrow" }, { label: "Chart", cls: "hide-narrow" },
    { label: "Trigger", cls: "hide-narrow" }, { label: "Runs", cls: "num hide-narrow" }, { label: "Created", cls: "hide-narrow" }],
    h.revisions.map(revisionRow), { id: "revisions" }));
  parts.push(el("h2", {}, "Flaky tests"));
  parts.push(h.flaky.length
    ? table("Tests that passed only on a retry", ["Test", { label: "Flaky runs", cls: "num" }, { label: "Runs", cls: "num" },
        { label: "Rate", cls: "num" }, { label: "Last flaky revision", cls: "num" }],
      h.flaky.map((f) => el("tr", {}, el("td", {}, f.test), el("td", { class: "num" }, String(f.flakyRuns)),
        el("td", { class: "num" }, String(f.runs)), el("td", { class: "num" }, rate(f.rate)), el("td", { class: "num" }, String(f.lastRevision)))),
      { id: "flaky" })
    : el("p", { class: "muted", id: "flaky" }, "No test needed a retry to pass."));
  parts.push(el("h2", {}, "Regressions"));
  parts.push(h.regressions.length
    ? el("div", { id: "regressions" }, h.regressions.map((g) => regressionItem({ ...g, namespace: ns })))
    : el("p", { class: "muted", id: "regressions" }, "No revision changed what fails."));
  main.replaceChildren(...parts);
}
