// A run's graph as a DAG: laid out by dagre (@dagrejs/dagre), drawn as SVG, each node coloured by its
// state (cached, waiting, running with its progress, done, failed, blocked) and showing its worker and time.
import dagre from "@dagrejs/dagre";
import { duration, svg } from "./dom.js";

const W = 204;
const H = 64;

export function edges(prompt) {
  const out = [];
  for (const [nid, node] of Object.entries(prompt || {})) {
    for (const value of Object.values((node && node.inputs) || {})) {
      if (Array.isArray(value) && value.length === 2 && typeof value[1] === "number" && String(value[0]) in prompt) {
        out.push([String(value[0]), nid]);
      }
    }
  }
  return out;
}

export function title(prompt, nid) {
  const node = prompt[nid] || {};
  return (node._meta && node._meta.title) || node.class_type || nid;
}

// Lay the graph out once per run (its shape never changes); states are drawn by update().
export function layout(prompt) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 24, ranksep: 56, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const nid of Object.keys(prompt || {})) g.setNode(nid, { width: W, height: H });
  for (const [a, b] of edges(prompt)) g.setEdge(a, b);
  dagre.layout(g);
  return g;
}

export function draw(g, prompt, onPick) {
  const [x0, y0, width, height] = bounds(g);
  const root = svg("svg", { class: "dag", viewBox: `${x0} ${y0} ${width} ${height}`, width, height, role: "img",
                            style: `min-width: ${Math.round(width * 0.6)}px`,
                            "aria-label": "The run's node graph, coloured by state" });
  root.append(svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7,
                                                markerHeight: 7, orient: "auto-start-reverse" },
    svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }))));
  for (const e of g.edges()) {
    const pts = g.edge(e).points || [];
    const d = pts.map((p, i) => `${i ? "L" : "M"} ${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(" ");
    root.append(svg("path", { d, class: "edge", "marker-end": "url(#arrow)" }));
  }
  const boxes = {};
  for (const nid of g.nodes()) {
    const n = g.node(nid);
    const x = n.x - W / 2;
    const y = n.y - H / 2;
    const group = svg("g", { class: "dag-node st-waiting", "data-node": nid, "data-state": "waiting", tabindex: 0,
                             role: "button", transform: `translate(${x},${y})`,
                             "aria-label": `node ${nid} ${title(prompt, nid)}` });
    const rect = svg("rect", { width: W, height: H, rx: 6, class: "box" });
    const fill = svg("rect", { x: 0, y: H - 5, width: 0, height: 5, class: "pfill" });
    const name = svg("text", { x: 8, y: 18, class: "t1" }, clip(`#${nid} ${title(prompt, nid)}`, 26));
    const state = svg("text", { x: 8, y: 36, class: "t2" }, "waiting");
    const who = svg("text", { x: 8, y: 52, class: "t3" }, "");
    group.append(rect, fill, name, state, who);
    group.addEventListener("click", () => onPick(nid));
    group.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") onPick(nid); });
    root.append(group);
    boxes[nid] = { group, fill, state, who };
  }
  return { root, boxes };
}

export function update(drawn, nodes) {
  for (const [nid, box] of Object.entries(drawn.boxes)) {
    const n = nodes[nid] || { state: "waiting" };
    box.group.setAttribute("class", `dag-node st-${n.state}`);
    box.group.setAttribute("data-state", n.state);
    const pct = n.state === "running" && n.max ? n.value / n.max : n.state === "done" || n.state === "cached" ? 1 : 0;
    box.fill.setAttribute("width", String(Math.round(W * pct)));
    box.state.textContent = n.state === "running" ? `running ${Math.round(pct * 100)}%` : n.state;
    const took = n.start && n.end ? duration(n.end - n.start) : "";
    box.who.textContent = clip([n.worker, took].filter(Boolean).join(" · "), 30);
  }
}

// What the drawing covers: every box and every edge's route (dagre routes a long edge around the boxes
// of the ranks it crosses, sometimes beyond the graph's own width and height), with a margin.
function bounds(g) {
  const xs = [];
  const ys = [];
  for (const nid of g.nodes()) {
    const n = g.node(nid);
    xs.push(n.x - W / 2, n.x + W / 2);
    ys.push(n.y - H / 2, n.y + H / 2);
  }
  for (const e of g.edges()) {
    for (const p of g.edge(e).points || []) { xs.push(p.x); ys.push(p.y); }
  }
  if (!xs.length) return [0, 0, W + 24, H + 24];
  const m = 12;
  const x0 = Math.floor(Math.min(...xs)) - m;
  const y0 = Math.floor(Math.min(...ys)) - m;
  return [x0, y0, Math.ceil(Math.max(...xs)) + m - x0, Math.ceil(Math.max(...ys)) + m - y0];
}

function clip(text, n) {
  return text.length > n ? text.slice(0, n - 1) + "…" : text;
}
