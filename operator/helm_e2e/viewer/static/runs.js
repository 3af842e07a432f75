// The runs page: filters (namespace, release, phase, time) kept in the URL, one page at a time from
// /api/v1/runs (its cursor behind "Load more"), and live rows from /api/v1/watch without a reload.
import { el, getJSON, phaseBadge, duration, timeEl, table, runHref, releaseHref, setLive } from "/static/app.js";

const PHASES = ["", "Pending", "Running", "Succeeded", "Failed", "Error", "Cancelled", "Superseded", "NoTests", "Refused"];
const WINDOWS = [["", "any time"], ["1", "last hour"], ["24", "last 24 hours"], ["168", "last 7 days"], ["720", "last 30 days"]];
const LIMIT = 50;

function filtersFromURL() {
  const q = new URLSearchParams(location.search);
  return { namespace: q.get("namespace") || "", release: q.get("release") || "", phase: q.get("phase") || "", hours: q.get("hours") || "" };
}

function since(hours) {
  return hours ? new Date(Date.now() - Number(hours) * 3600 * 1000).toISOString() : "";
}

function query(f, cursor) {
  const q = new URLSearchParams({ limit: String(LIMIT) });
  if (f.namespace) q.set("namespace", f.namespace);
  if (f.release) q.set("release", f.release);
  if (f.phase) q.set("phase", f.phase);
  if (f.hours) q.set("since", since(f.hours));
  if (cursor) q.set("continue", cursor);
  return "/api/v1/runs?" + q.toString();
}

function matches(row, f) {
  if (f.namespace && row.namespace !== f.namespace) return false;
  if (f.release && row.release !== f.release) return false;
  if (f.phase && row.phase !== f.phase) return false;
  if (f.hours && (!row.createdAt || new Date(row.createdAt) < new Date(since(f.hours)))) return false;
  return true;
}

function tests(s) {
  const parts = [`${s.passed}/${s.total} passed`];
  if (s.failed) parts.push(`${s.failed} failed`);
  if (s.errored) parts.push(`${s.errored} errored`);
  if (s.flaky) parts.push(`${s.flaky} flaky`);
  return parts.join(", ");
}

export function runRow(r) {
  const attempt = r.attempt > 1 ? ` (attempt ${r.attempt})` : "";
  return el("tr", { "data-run": `${r.namespace}/${r.name}`, "data-phase": r.phase },
    el("td", {}, el("a", { href: runHref(r.namespace, r.name) }, r.name)),
    el("td", { class: "hide-narrow" }, r.namespace),
    el("td", {}, el("a", { href: releaseHref(r.namespace, r.release) }, r.release)),
    el("td", { class: "num" }, String(r.revision) + attempt),
    el("td", { class: "hide-narrow" }, r.request || r.trigger),
    el("td", { class: "hide-narrow" }, r.imageTag || "-"),
    el("td", {}, phaseBadge(r.phase)),
    el("td", {}, tests(r.summary)),
    el("td", { class: "num" }, duration(r.durationSeconds)),
    el("td", { class: "hide-narrow" }, timeEl(r.createdAt)));
}

const HEADERS = ["Run", { label: "Namespace", cls: "hide-narrow" }, "Release", { label: "Revision", cls: "num" }, { label: "Trigger", cls: "hide-narrow" },
  { label: "Image tag", cls: "hide-narrow" }, "Phase", "Tests", { label: "Duration", cls: "num" }, { label: "Created", cls: "hide-narrow" }];

function filterForm(f, namespaces) {
  const nsInput = namespaces.length
    ? el("select", { id: "f-namespace", name: "namespace" }, el("option", { value: "" }, "all shown"),
        namespaces.map((n) => el("option", { value: n, selected: n === f.namespace }, n)))
    : el("input", { id: "f-namespace", name: "namespace", value: f.namespace, placeholder: "all", autocomplete: "off" });
  return el("form", { class: "filters", role: "search", "aria-label": "Filter runs" },
    el("label", { for: "f-namespace" }, "Namespace", nsInput),
    el("label", { for: "f-release" }, "Release", el("input", { id: "f-release", name: "release", value: f.release, placeholder: "any", autocomplete: "off" })),
    el("label", { for: "f-phase" }, "Phase", el("select", { id: "f-phase", name: "phase" },
      PHASES.map((p) => el("option", { value: p, selected: p === f.phase }, p || "any")))),
    el("label", { for: "f-hours" }, "Created", el("select", { id: "f-hours", name: "hours" },
      WINDOWS.map(([v, t]) => el("option", { value: v, selected: v === f.hours }, t)))),
    el("button", { type: "submit" }, "Apply"));
}

function scopeNotice(scope, forbidden) {
  const refused = new Set(forbidden);
  for (const ns of scope.namespaces || []) if (!ns.allowed) refused.add(ns.name);
  if (!refused.size) return null;
  return el("p", { class: "notice", id: "forbidden", role: "note" },
    "Not shown — you may not list E2ERuns in: ", [...refused].join(", "), ". The apiserver decides; ask for a Role there to see them.");
}

export async function renderRuns(main) {
  const f = filtersFromURL();
  const scope = await getJSON("/api/v1/scope");
  const allowed = (scope.namespaces || []).filter((n) => n.allowed).map((n) => n.name);
  const form = filterForm(f, scope.cluster ? [] : allowed);
  const body = el("tbody", { id: "runs-body" });
  const more = el("button", { type: "button", class: "secondary", id: "more", hidden: true }, "Load more");
  const count = el("p", { class: "muted", id: "count" });
  const notice = el("div", { id: "notices" });
  const scopeText = scope.cluster ? "all namespaces you may list" : "namespaces " + (scope.namespaces || []).map((n) => n.name).join(", ");
  main.replaceChildren(el("h1", {}, "E2E runs"), el("p", { class: "muted" }, "Looking in ", scopeText, "."), form, notice,
    el("div", { class: "table-wrap" }, el("table", { id: "runs" }, el("caption", {}, "Runs, newest first within each page"),
      el("thead", {}, el("tr", {}, HEADERS.map((h) => el("th", { scope: "col", class: h.cls }, h.label ?? h)))), body)),
    more, count);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const q = new URLSearchParams();
    for (const [k, v] of data.entries()) if (v) q.set(k, String(v));
    location.search = q.toString();
  });
  let cursor = null, shown = 0;
  const forbidden = new Set();
  async function load() {
    const page = await getJSON(query(f, cursor));
    for (const ns of page.forbidden) forbidden.add(ns);
    notice.replaceChildren(...[scopeNotice(scope, [...forbidden])].filter(Boolean));
    body.append(...page.items.map(runRow));
    shown += page.items.length;
    cursor = page.continue;
    more.hidden = !cursor;
    count.textContent = `${shown} runs shown` + (cursor ? " (more behind Load more)" : "");
    if (!shown && !cursor) body.replaceChildren(el("tr", { id: "empty" }, el("td", { colspan: HEADERS.length }, "No runs match.")));
  }
  more.addEventListener("click", () => load().catch((e) => setLive(e.message)));
  await load();
  follow(f, body);
}

function follow(f, body) {
  const q = new URLSearchParams();
  if (f.namespace) q.set("namespace", f.namespace);
  const source = new EventSource("/api/v1/watch?" + q.toString());
  source.addEventListener("open", () => setLive("Live: following changes"));
  source.addEventListener("error", () => setLive("Live updates interrupted; retrying…"));
  source.addEventListener("run", (event) => {
    const { run } = JSON.parse(event.data);
    if (!matches(run, f)) return;
    const key = `${run.namespace}/${run.name}`;
    const row = runRow(run);
    row.classList.add("fresh");
    const old = [...body.children].find((tr) => tr.dataset.run === key);
    document.getElementById("empty")?.remove();
    if (old) old.replaceWith(row); else body.prepend(row);
    const count = document.getElementById("count");
    count.textContent = count.textContent.replace(/^\d+ runs shown/, `${body.querySelectorAll("tr[data-run]").length} runs shown`);
    setLive(`Live: ${run.name} is ${run.phase}`);
  });
  source.addEventListener("deleted", (event) => {
    const { namespace, name } = JSON.parse(event.data);
    [...body.children].find((tr) => tr.dataset.run === `${namespace}/${name}`)?.remove();
  });
  source.addEventListener("error", (event) => {
    if (event.data) setLive(`Live updates: ${JSON.parse(event.data).message}`);
  });
  source.addEventListener("forbidden", (event) => {
    setLive(`Live updates not allowed in ${JSON.parse(event.data).namespace}`);
  });
}
