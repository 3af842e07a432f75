// The release page's chart as inline SVG: a bar per revision (height: duration, colour: phase) and a
// line of the pass rate (0–100 %). Text is set with textContent; every shape has a <title>.
import { duration } from "/static/app.js";

const NS = "http://www.w3.org/2000/svg";
const W = 900, H = 240, PAD_L = 48, PAD_R = 48, PAD_T = 16, PAD_B = 36;

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

export function historyChart(series) {
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-labelledby": "chart-title chart-desc" });
  root.append(svg("title", { id: "chart-title" }, "Duration and pass rate per revision"));
  root.append(svg("desc", { id: "chart-desc" },
    series.map((p) => `revision ${p.revision}: ${p.phase}, ${duration(p.durationSeconds)}, pass rate ${p.passRate === null ? "-" : Math.round(p.passRate * 100) + "%"}`).join("; ")));
  if (!series.length) return root;
  const longest = Math.max(1, ...series.map((p) => p.durationSeconds || 0));
  const width = (W - PAD_L - PAD_R) / series.length;
  const plotH = H - PAD_T - PAD_B;
  root.append(svg("line", { x1: PAD_L, y1: H - PAD_B, x2: W - PAD_R, y2: H - PAD_B, class: "axis" }));
  root.append(svg("text", { x: 4, y: PAD_T + 10 }, duration(longest)));
  root.append(svg("text", { x: W - PAD_R + 6, y: PAD_T + 10 }, "100%"));
  root.append(svg("text", { x: W - PAD_R + 6, y: H - PAD_B }, "0%"));
  const points = [];
  series.forEach((p, i) => {
    const x = PAD_L + i * width;
    const h = Math.max(2, ((p.durationSeconds || 0) / longest) * plotH);
    const cls = ["Succeeded", "Failed", "Error"].includes(p.phase) ? `bar-${p.phase}` : "bar-other";
    const bar = svg("rect", { x: x + width * 0.15, y: H - PAD_B - h, width: Math.max(1, width * 0.7), height: h, class: cls });
    bar.append(svg("title", {}, `r${p.revision} ${p.phase} ${duration(p.durationSeconds)}`));
    root.append(bar);
    if (series.length <= 40 || i % Math.ceil(series.length / 40) === 0) {
      root.append(svg("text", { x: x + width / 2, y: H - PAD_B + 16, "text-anchor": "middle" }, `r${p.revision}`));
    }
    if (p.passRate !== null && p.passRate !== undefined) points.push([x + width / 2, PAD_T + (1 - p.passRate) * plotH, p]);
  });
  if (points.length) {
    root.append(svg("polyline", { points: points.map(([x, y]) => `${x},${y}`).join(" "), class: "rate" }));
    for (const [x, y, p] of points) {
      const dot = svg("circle", { cx: x, cy: y, r: 4, class: "dot" });
      dot.append(svg("title", {}, `r${p.revision} pass rate ${Math.round(p.passRate * 100)}%`));
      root.append(dot);
    }
  }
  return root;
}
