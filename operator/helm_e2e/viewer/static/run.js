// The run page: what ran and how it ended — every test with attempts, exit codes, reasons, pytest counts
// and failures, log tails, diagnostics; artifacts (listed and downloadable), Events, notifications, the
// rollback, the regression and a JUnit download. Data from /api/v1/namespaces/{ns}/runs/{name}.
import { el, getJSON, phaseBadge, duration, timeEl, table, releaseHref, apiRun, path } from "/static/app.js";

function facts(pairs) {
  return el("dl", { class: "facts" }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

function attempts(t) {
  if (!t.attempts || !t.attempts.length) return null;
  return table("Attempts", ["Attempt", "Phase", "Exit code", "Reason", "Duration"], t.attempts.map((a) =>
    el("tr", {}, el("td", {}, String(a.attempt)), el("td", {}, phaseBadge(a.phase)), el("td", {}, a.exitCode ?? "-"),
      el("td", {}, a.reason || "-"), el("td", {}, duration(a.durationSeconds)))));
}

function pytestPart(t) {
  if (!t.pytest && !(t.failures || []).length) return null;
  const p = t.pytest || {};
  const ids = (t.failures || []).length ? t.failures.map((f) => [f.id, f.message]) : (p.firstFailures || []).map((f) => [f, ""]);
  return el("div", {},
    t.pytest ? el("p", {}, `pytest: ${p.passed} passed, ${p.failed} failed, ${p.errors} errors, ${p.skipped} skipped`) : null,
    ids.length ? el("ul", { class: "keys", "aria-label": "First failures" }, ids.map(([id, msg]) =>
      el("li", {}, el("code", {}, id), msg ? ` — ${msg}` : ""))) : null);
}

function diagnostics(t) {
  const d = t.diagnostics;
  if (!d) return null;
  const rows = (d.containers || []).map((c) => el("tr", {}, el("td", {}, c.name + (c.init ? " (init)" : "")),
    el("td", {}, c.state || "-"), el("td", {}, c.reason || "-"), el("td", {}, c.exitCode ?? "-"), el("td", {}, c.message || "")));
  const events = (d.events || []).map((e) => el("tr", {}, el("td", {}, e.type), el("td", {}, e.reason), el("td", {}, e.message), el("td", {}, String(e.count ?? ""))));
  return el("div", {}, el("h4", {}, "Diagnostics"),
    rows.length ? table("Containers", ["Container", "State", "Reason", "Exit code", "Message"], rows) : null,
    events.length ? table("Pod Events", ["Type", "Reason", "Message", "Count"], events) : null);
}

function testSection(t) {
  return el("section", { class: "test", "data-test": t.name, "aria-labelledby": `t-${t.name}` },
    el("h3", { id: `t-${t.name}` }, t.name, " ", phaseBadge(t.phase), t.flaky ? el("span", { class: "badge p-Pending" }, " flaky") : null),
    facts([["Pod", t.pod], ["Exit code", t.exitCode ?? null], ["Reason", t.reason], ["Message", t.message],
      ["Attempt", t.attempt ? String(t.attempt) : null], ["Duration", duration(t.durationSeconds)], ["Started", t.startedAt ? timeEl(t.startedAt) : null],
      ["Artifacts", t.artifactsMessage]]),
    attempts(t), pytestPart(t), diagnostics(t),
    t.failedLogTail ? [el("h4", {}, "Log of the last failed attempt"), el("pre", { tabindex: 0 }, t.failedLogTail)] : null,
    el("h4", {}, "Log tail" + (t.logContainer ? ` (${t.logContainer})` : "")),
    el("pre", { tabindex: 0, class: "log" }, t.logTail || "(no log recorded)"));
}

async function artifactsSection(ns, name, holder) {
  try {
    const listing = await getJSON(apiRun(ns, name) + "/artifacts");
    const rows = [];
    for (const [test, entry] of Object.entries(listing.tests)) {
      const bundle = apiRun(ns, name) + "/artifacts" + path(test);
      if (entry.refused) rows.push(el("tr", {}, el("td", {}, test), el("td", { colspan: 3 }, `refused: ${entry.refused}`)));
      for (const f of entry.files) {
        const href = bundle + "/files/" + f.name.split("/").map(encodeURIComponent).join("/");
        rows.push(el("tr", {}, el("td", {}, test), el("td", {}, el("a", { href, download: "" }, f.name)),
          el("td", { class: "num" }, String(f.size)), el("td", {}, el("a", { href: bundle, download: "" }, "all (tar.gz)"))));
      }
    }
    holder.replaceChildren(rows.length ? table("Files the tests left", ["Test", "File", { label: "Bytes", cls: "num" }, "Bundle"], rows, { id: "artifacts" })
      : el("p", { class: "muted" }, "No artifacts."));
  } catch (error) {
    holder.replaceChildren(el("p", { class: "notice", role: "alert" }, `Artifacts not listed: ${error.message}`));
  }
}

function outcomes(d) {
  const parts = [];
  const g = d.regression;
  if (g) {
    const keys = (label, list) => (list || []).length ? [el("h4", {}, `${label} (${list.length})`), el("ul", { class: "keys" }, list.map((k) => el("li", {}, el("code", {}, k))))] : [];
    parts.push(el("div", { id: "regression" }, el("h3", {}, `Against revision ${g.revision} (${g.comparedWith})`),
      ...keys("Newly failing", g.newlyFailing), ...keys("Fixed", g.fixed), ...keys("Still failing", g.stillFailing)));
  }
  if ((d.notifications || []).length) parts.push(table("Notifications", ["Target", "State", "Type", "Attempts", "Message"],
    d.notifications.map((n) => el("tr", {}, el("td", {}, n.target), el("td", {}, n.state), el("td", {}, n.type || "-"), el("td", {}, String(n.attempts ?? 0)), el("td", {}, n.message || "")))));
  if (d.rollback) parts.push(facts([["Rolled back to", `revision ${d.rollback.target}`], ["helm calls", String(d.rollback.attempts ?? 0)],
    ["Revision created", d.rollback.revision ? String(d.rollback.revision) : "not yet seen"]]));
  const conds = d.conditions.map((c) => el("tr", {}, el("td", {}, c.type), el("td", {}, c.status), el("td", {}, c.reason), el("td", {}, c.message || "")));
  if (conds.length) parts.push(table("Conditions (the e-mail's outcome is EmailSent)", ["Type", "Status", "Reason", "Message"], conds, { id: "conditions" }));
  return parts.length ? parts : [el("p", { class: "muted" }, "Nothing recorded yet.")];
}

export async function renderRun(main, ns, name) {
  const d = await getJSON(apiRun(ns, name));
  const r = d.run;
  const s = r.summary;
  const artifacts = el("div", { id: "artifacts-holder" }, d.hasArtifacts ? el("p", {}, "Listing…") : el("p", { class: "muted" }, "No artifacts."));
  const events = d.events === null ? el("p", { class: "notice" }, "You may not list Events in this namespace.")
    : d.events.length ? table("Events about the run", ["Type", "Reason", "Message", "Count", "Last seen"], d.events.map((e) =>
      el("tr", {}, el("td", {}, e.type), el("td", {}, e.reason), el("td", {}, e.message), el("td", {}, String(e.count ?? "")), el("td", {}, e.lastSeen))), { id: "events" })
    : el("p", { class: "muted" }, "No Events (they expire after an hour).");
  main.replaceChildren(...[
    el("h1", {}, `Run ${r.name} `, phaseBadge(r.phase)),
    facts([["Release", el("a", { href: releaseHref(r.namespace, r.release) }, r.release)], ["Namespace", r.namespace],
      ["Revision", `${r.revision}` + (r.attempt > 1 ? ` (attempt ${r.attempt})` : "")], ["Trigger", r.request || r.trigger],
      ["Chart", r.chart], ["App version", r.appVersion], ["Image tag", r.imageTag],
      ["Commit", r.commit ? el("code", {}, r.commit) : null], ["Managed by", r.managedBy],
      ["Tests", `${s.passed}/${s.total} passed, ${s.failed} failed, ${s.errored} errored, ${s.flaky} flaky`],
      ["Duration", duration(r.durationSeconds)], ["Started", r.startedAt ? timeEl(r.startedAt) : null], ["Message", r.message],
      ["On failure", d.spec.onFailure]]),
    el("p", {}, el("a", { class: "button", id: "junit", href: apiRun(ns, name) + "/junit", download: `${r.name}.junit.xml` }, "Download JUnit XML")),
    el("h2", {}, "Tests"), d.tests.length ? d.tests.map(testSection) : el("p", { class: "muted" }, "No tests yet."),
    el("h2", {}, "Artifacts"), artifacts,
    el("h2", {}, "Outcomes"), outcomes(d),
    el("h2", {}, "Events"), events].flat(Infinity));
  if (d.hasArtifacts) await artifactsSection(ns, name, artifacts);
}
