// helm-e2e ui: the router and the DOM helpers. Every value from the cluster is set as text
// (textContent / setAttribute on non-script attributes), never parsed as markup.
import { renderRuns } from "/static/runs.js";
import { renderRelease } from "/static/release.js";
import { renderRun } from "/static/run.js";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function path(...parts) {
  return "/" + parts.map((p) => encodeURIComponent(String(p))).join("/");
}

export function runHref(ns, name) { return path("runs", ns, name); }
export function releaseHref(ns, release) { return path("releases", ns, release); }
export function apiRun(ns, name) { return "/api/v1" + path("namespaces", ns, "runs", name); }

export async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) {
    const error = new Error((body && body.error) || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

export function phaseBadge(phase) {
  return el("span", { class: `badge p-${String(phase).replace(/[^A-Za-z]/g, "")}` }, phase || "-");
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || seconds < 0) return "-";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export function when(iso) {
  if (!iso) return "-";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

export function timeEl(iso) {
  return iso ? el("time", { datetime: iso }, when(iso)) : "-";
}

export function table(caption, headers, rows, attrs = {}) {
  const head = el("tr", {}, headers.map((h) => el("th", { scope: "col", class: h.cls }, h.label ?? h)));
  return el("div", { class: "table-wrap" },
    el("table", attrs, el("caption", {}, caption), el("thead", {}, head), el("tbody", {}, rows)));
}

export function setLive(text) {
  document.getElementById("live").textContent = text;
}

export function showError(main, error) {
  main.replaceChildren(el("h1", {}, "Not shown"), el("p", { class: "notice error", role: "alert" }, error.message));
}

function route() {
  const main = document.getElementById("main");
  const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "runs" && parts.length === 3) return renderRun(main, parts[1], parts[2]);
  if (parts[0] === "releases" && parts.length === 3) return renderRelease(main, parts[1], parts[2]);
  return renderRuns(main);
}

route().catch((error) => showError(document.getElementById("main"), error));
