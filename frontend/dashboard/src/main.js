// The nodefarm dashboard: the whole farm live in the browser.
//
// State comes over Socket.IO (namespace /dashboard, api/dashboard.py): a snapshot on connect, then
// `workers`, `queue`, `runs`, `cache` when they change and every run event of the farm as `event`.
// socket.io-client reconnects by itself; a run page then catches up on the events it missed with
// GET /nodefarm/runs/<id>/events?after=<last event id>. Every action goes through the HTTP API that
// scripts use (/prompt, /api/jobs/<id>/cancel, /interrupt, /api/jobs/<id>/front, /api/jobs/<id>/priority).
import { io } from "socket.io-client";
import "./style.css";
import * as dag from "./dag.js";
import { bar, bytes, duration, h, progress, replace, viewUrl } from "./dom.js";
import { promptFromPng } from "./png.js";

const view = document.getElementById("view");
const conn = document.getElementById("conn");
const clientId = "dashboard-" + Math.random().toString(36).slice(2, 12);
const state = {
  snap: null,
  examples: null,
  run: null, // the open run page: {id, detail, drawn, lastEvent, previews, picked, buffer}
  dirty: new Set(),
};

// ---- the socket -----------------------------------------------------------------------------------

const socket = io("/dashboard", { path: "/socket.io", withCredentials: true, reconnectionDelayMax: 4000 });

function setConn(kind, text) {
  conn.dataset.conn = kind;
  conn.textContent = text;
}

socket.on("connect", () => {
  conn.dataset.connects = String(Number(conn.dataset.connects || 0) + 1); // reconnects show here (and in tests)
  setConn("live", "live");
  if (state.run && state.run.detail) catchUp(state.run);
});
socket.on("disconnect", () => setConn("offline", "reconnecting…"));
socket.on("connect_error", (err) => setConn("offline", `offline (${err.message}), retrying…`));
socket.on("snapshot", (snap) => {
  state.snap = snap;
  for (const part of ["workers", "queue", "runs", "cache"]) state.dirty.add(part);
  paint();
});
for (const part of ["workers", "queue", "runs", "cache"]) {
  socket.on(part, (data) => {
    if (!state.snap) return;
    if (part === "workers") Object.assign(state.snap, data);
    else state.snap[part] = data;
    state.dirty.add(part);
    paint();
  });
}
socket.on("event", (ev) => {
  const run = state.run;
  if (!run || ev.pid !== run.id) return;
  if (!run.detail) run.buffer.push(ev);
  else apply(run, ev);
});

// ---- the HTTP API -------------------------------------------------------------------------------

async function call(method, url, body) {
  const res = await fetch(url, {
    method, credentials: "same-origin",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  return { ok: res.ok, status: res.status, data };
}

function errorText(r) {
  const e = r.data && r.data.error;
  if (!e) return `HTTP ${r.status}`;
  return typeof e === "string" ? e : [e.message, e.details].filter(Boolean).join(": ");
}

function notify(text, kind = "info") {
  const box = document.getElementById("toast") || document.body.appendChild(h("div", { id: "toast", role: "status", "aria-live": "polite" }));
  box.dataset.kind = kind;
  box.textContent = text;
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => { box.textContent = ""; }, 6000);
}

async function cancelRun(id) {
  const r = await call("POST", `/api/jobs/${encodeURIComponent(id)}/cancel`);
  notify(r.ok ? `Cancelled ${id}` : `Cancel failed: ${errorText(r)}`, r.ok ? "info" : "error");
}

async function runOf(id) {
  const r = await call("GET", `/nodefarm/dashboard/runs/${encodeURIComponent(id)}`);
  if (!r.ok) throw new Error(errorText(r));
  return r.data;
}

// What the farm stamps on a submission, not sent again by a retry.
const STAMPED = ["client_id", "create_time", "nodefarm_submitter"];

async function submit(prompt, { extra = undefined } = {}) {
  const body = { prompt, client_id: clientId };
  if (extra) body.extra_data = extra;
  return call("POST", "/prompt", body);
}

async function moveToFront(id) {
  const r = await call("POST", `/api/jobs/${encodeURIComponent(id)}/front`);
  notify(r.ok ? `Run ${id} is next` : `Move to front failed: ${errorText(r)}`, r.ok ? "info" : "error");
}

async function retry(id) {
  try {
    const run = await runOf(id); // the same graph and extra data (the workflow a saved PNG embeds, a priority)
    const extra = Object.fromEntries(Object.entries(run.extra_data || {}).filter(([k]) => !STAMPED.includes(k)));
    const r = await submit(run.prompt, { extra });
    if (!r.ok) throw new Error(errorText(r));
    location.hash = `#/run/${encodeURIComponent(r.data.prompt_id)}`;
  } catch (err) {
    notify(`Retry failed: ${err.message}`, "error");
  }
}

async function setPriority(id, value) {
  const r = await call("POST", `/api/jobs/${encodeURIComponent(id)}/priority`, { priority: Number(value) });
  notify(r.ok ? `Priority of ${id} is now ${value}` : `Priority failed: ${errorText(r)}`, r.ok ? "info" : "error");
}

async function lift(worker, button) {
  button.disabled = true;
  const r = await call("DELETE", `/api/nodefarm/blocklist/${encodeURIComponent(worker)}`);
  if (!r.ok) {
    button.disabled = false;
    notify(`Lift failed: ${errorText(r)}`, "error");
  }
}

// ---- pages ----------------------------------------------------------------------------------------

function route() {
  const hash = location.hash || "#/";
  for (const a of document.querySelectorAll("[data-nav]")) {
    const on = (a.dataset.nav === "submit" && hash.startsWith("#/submit")) || (a.dataset.nav === "overview" && !hash.startsWith("#/submit"));
    if (on) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  const m = hash.match(/^#\/run\/(.+)$/);
  if (m) return openRun(decodeURIComponent(m[1]));
  state.run = null;
  if (hash.startsWith("#/submit")) return showSubmit();
  showOverview();
}

function section(id, label, ...children) {
  return h("section", { id, "aria-labelledby": id + "-h", class: "card" }, h("h2", { id: id + "-h" }, label), ...children);
}

function showOverview() {
  document.title = "nodefarm dashboard";
  replace(view,
    h("div", { class: "grid" },
      section("workers", "Workers", h("div", { id: "hosts", class: "hosts" }), h("div", { id: "devices", class: "workers" }, h("p", {}, "loading…"))),
      section("queue", "Queue", h("div", { id: "queue-body" }, h("p", {}, "loading…"))),
      section("runs", "Runs", h("div", { id: "runs-body" }, h("p", {}, "loading…"))),
      section("cache", "Cache", h("div", { id: "cache-body" }, h("p", {}, "loading…")))));
  for (const part of ["workers", "queue", "runs", "cache"]) state.dirty.add(part);
  paint();
}

let painting = false;
function paint() {
  if (painting) return;
  painting = true;
  requestAnimationFrame(() => {
    painting = false;
    if (!state.snap) return;
    for (const part of [...state.dirty]) {
      const el = document.getElementById(part === "workers" ? "devices" : `${part}-body`);
      if (!el) continue;
      if (el.contains(document.activeElement) && document.activeElement.tagName === "INPUT") continue; // typing
      state.dirty.delete(part);
      ({ workers: paintWorkers, queue: paintQueue, runs: paintRuns, cache: paintCache })[part](el);
    }
  });
}
document.addEventListener("focusout", () => setTimeout(paint, 0));

function paintWorkers(el) {
  const { workers = [], hosts = [] } = state.snap;
  const hostsEl = document.getElementById("hosts");
  if (hostsEl) {
    replace(hostsEl, hosts.map((x) => h("div", { class: "host", "data-host": x.host },
      h("strong", {}, x.host), ` ${x.workers} worker${x.workers === 1 ? "" : "s"}, ${x.busy} busy `,
      bar("memory", x.memory_total - x.memory_free, x.memory_total))));
  }
  if (!workers.length) return replace(el, h("p", { class: "empty" }, "No live worker."));
  replace(el, workers.map((w) => {
    const badge = w.blocklisted
      ? h("span", { class: "badge st-blocklisted", "data-state": "blocklisted" },
          `blocklisted until ${new Date(w.blocklisted.until * 1000).toLocaleTimeString()}: ${w.blocklisted.reason}`)
      : h("span", { class: `badge st-${w.state}`, "data-state": w.state }, w.state);
    return h("article", { class: "worker", "data-worker": w.name, "data-worker-state": w.state, "aria-label": `worker ${w.name}` },
      h("div", { class: "row" },
        h("strong", { class: "wname" }, w.name), h("span", { class: "muted" }, ` on ${w.host}`), " ", badge,
        w.blocklisted ? h("button", { type: "button", "data-lift": w.name, "aria-label": `Lift ${w.name} off the blocklist`,
                                      onclick: (e) => lift(w.name, e.currentTarget) }, "Lift") : null,
        h("span", { class: "muted beat", title: "time since the last heartbeat" }, `beat ${w.beat_age.toFixed(1)} s ago`),
        w.restarts ? h("span", { class: "muted" }, ` · ${w.restarts} restarts`) : null),
      (w.devices || []).map((d) => h("div", { class: "device" },
        h("span", { class: "dname" }, d.name),
        bar(d.type === "cpu" ? "RAM" : "VRAM", (d.vram_total || 0) - (d.vram_free || 0), d.vram_total || 0),
        typeof d.utilization === "number" ? h("span", { class: "muted" }, ` util ${Math.round(d.utilization)}%`) : null)),
      w.running.map((r) => h("div", { class: "doing" }, "running node ", h("code", {}, r.node), " of ",
        h("a", { href: `#/run/${encodeURIComponent(r.prompt_id)}` }, r.prompt_id.slice(0, 8)),
        progress(`progress of node ${r.node}`, r.value, r.max))),
      (w.models || []).length ? h("details", { class: "models" },
        h("summary", {}, `${w.models.length} resident model${w.models.length === 1 ? "" : "s"}`),
        h("ul", {}, w.models.map((m) => h("li", {}, `${(m.objects || []).join(", ") || m.key} (${bytes(m.bytes)})`)))) : null);
  }));
}

function age(ms) {
  return ms ? duration(Date.now() - ms) : "—";
}

// Ages tick between queue changes.
setInterval(() => {
  for (const el of document.querySelectorAll("[data-since]")) el.textContent = age(Number(el.dataset.since));
}, 1000);

function paintQueue(el) {
  const q = state.snap.queue || { running: [], pending: [] };
  const rows = [...q.running.map((j) => ({ ...j, status: "running" })), ...q.pending.map((j) => ({ ...j, status: "pending" }))];
  if (!rows.length) return replace(el, h("p", { class: "empty" }, "The queue is empty."));
  const more = (q.pending_total || 0) - q.pending.length; // a long queue lists its head only
  replace(el, h("div", { class: "scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, ["#", "run", "state", "priority", "submitter", "age", "nodes", "actions"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((j) => h("tr", { "data-run": j.id, "data-status": j.status },
      h("td", {}, j.status === "running" ? "▶" : String(j.position)),
      h("td", {}, h("a", { href: `#/run/${encodeURIComponent(j.id)}` }, j.id.slice(0, 8))),
      h("td", {}, h("span", { class: `badge st-${j.status}` }, j.status)),
      h("td", {}, String(j.priority)),
      h("td", {}, j.submitter || "—"),
      h("td", { "data-since": j.create_time || "" }, age(j.create_time)),
      h("td", {}, String(j.nodes)),
      h("td", { class: "actions" },
        h("button", { type: "button", "aria-label": `Cancel run ${j.id}`, "data-action": "cancel", onclick: () => cancelRun(j.id) }, "Cancel"),
        j.status === "pending" ? h("button", { type: "button", "aria-label": `Move run ${j.id} to the front`, "data-action": "front",
                                              onclick: () => moveToFront(j.id) }, "To front") : null,
        j.status === "pending" ? priorityControl(j) : null))))),
    more > 0 ? h("p", { class: "muted", id: "queue-more" }, `… and ${more} more pending (the next ${q.pending.length} are listed)`) : null));
}

function priorityControl(j) {
  const input = h("input", { type: "number", step: 1, value: j.priority, class: "prio", "aria-label": `Priority of run ${j.id}` });
  return h("span", { class: "prio-set" }, input,
    h("button", { type: "button", "aria-label": `Set the priority of run ${j.id}`, onclick: () => setPriority(j.id, input.value) }, "Set"));
}

function paintRuns(el) {
  const runs = state.snap.runs || [];
  if (!runs.length) return replace(el, h("p", { class: "empty" }, "No finished run yet."));
  replace(el, h("div", { class: "scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, ["run", "status", "time", "ran / cached", "submitter", "image", ""].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, runs.map((r) => h("tr", { "data-run": r.id, "data-status": r.status },
      h("td", {}, h("a", { href: `#/run/${encodeURIComponent(r.id)}` }, r.id.slice(0, 8))),
      h("td", {}, h("span", { class: `badge st-${r.status}` }, r.status), r.error ? h("span", { class: "muted" }, ` ${r.error.type || ""} #${r.error.node}`) : null),
      h("td", {}, duration(r.duration_ms)),
      h("td", { title: "nodes run / cached of the run's nodes, and its cache hit rate" },
        `${r.executed ?? "—"} / ${r.cached} of ${r.nodes}`, r.nodes ? h("span", { class: "muted" }, ` ${Math.round((100 * r.cached) / r.nodes)}%`) : null),
      h("td", { class: "who", title: r.submitter || "" }, r.submitter || "—"),
      h("td", {}, r.image ? h("img", { class: "thumb", src: viewUrl(r.image) + "&preview=webp;50", alt: `output of run ${r.id}`, loading: "lazy" }) : ""),
      h("td", {}, r.status !== "done" ? h("button", { type: "button", "aria-label": `Retry run ${r.id}`, onclick: () => retry(r.id) }, "Retry") : null)))))));
}

function paintCache(el) {
  const c = state.snap.cache || {};
  const store = c.store || {};
  replace(el,
    h("dl", { class: "facts" },
      h("dt", {}, "hit rate"), h("dd", { id: "hit-rate" }, c.hit_rate === null || c.hit_rate === undefined ? "—" : `${(100 * c.hit_rate).toFixed(1)}%`),
      h("dt", {}, "nodes"), h("dd", {}, `${c.hits || 0} cached of ${c.nodes || 0} in the last ${c.runs || 0} runs`),
      h("dt", {}, "result store"), h("dd", {}, store.max ? bar("memory", store.used, store.max) : bytes(store.used), ` ${store.entries || 0} entries`)),
    (c.most_reused || []).length ? h("div", {}, h("h3", {}, "Most reused nodes"),
      h("ol", { class: "reused" }, c.most_reused.map((x) => h("li", {}, h("code", {}, x.class_type), ` ${x.hits} hits`)))) : null);
}

// ---- a run's page -------------------------------------------------------------------------------

function cmpId(a, b) {
  const [am, as] = String(a).split("-").map(Number);
  const [bm, bs] = String(b).split("-").map(Number);
  return am - bm || (as || 0) - (bs || 0);
}

async function openRun(id) {
  if (state.run && state.run.id === id) return;
  const run = { id, detail: null, drawn: null, lastEvent: "0-0", previews: {}, previewIds: {}, picked: null, buffer: [] };
  state.run = run;
  document.title = `run ${id.slice(0, 8)} · nodefarm`;
  replace(view, h("section", { class: "card", "aria-labelledby": "run-h" }, h("h2", { id: "run-h" }, `Run ${id}`), h("p", {}, "loading…")));
  let r = await call("GET", `/nodefarm/dashboard/runs/${encodeURIComponent(id)}`);
  for (let i = 0; !r.ok && r.status === 404 && i < 10 && state.run === run; i++) { // just submitted: it may not be stored yet
    await new Promise((ok) => setTimeout(ok, 300));
    r = await call("GET", `/nodefarm/dashboard/runs/${encodeURIComponent(id)}`);
  }
  if (state.run !== run) return;
  if (!r.ok) return replace(view, h("section", { class: "card" }, h("h2", {}, `Run ${id}`), h("p", { class: "error" }, errorText(r))));
  run.detail = r.data;
  run.lastEvent = r.data.last_event || "0-0";
  storedPreviews(run, r.data.previews);
  buildRun(run);
  for (const ev of run.buffer.splice(0)) apply(run, ev);
  paintRun(run);
}

// After a reconnect: the run's events since the last one seen. Live events carry ids of the farm's stream and
// the replay ids of the run's own stream (written in the same step, so the same millisecond or the next): ask
// from the millisecond before, and apply them in order over what is shown (a repeated event changes nothing).
async function catchUp(run) {
  const ms = Number(String(run.lastEvent).split("-")[0]);
  const after = ms > 0 ? `${ms - 1}-0` : "0-0";
  const r = await call("GET", `/nodefarm/runs/${encodeURIComponent(run.id)}/events?after=${after}`);
  if (!r.ok || state.run !== run) return;
  for (const ev of r.data) apply(run, { ...ev, pid: run.id }, true);
  const d = await call("GET", `/nodefarm/dashboard/runs/${encodeURIComponent(run.id)}`); // previews missed meanwhile
  if (d.ok && state.run === run && storedPreviews(run, d.data.previews)) paintRun(run);
}

// The latest preview of each node, as the run's stream holds it (sent before the page opened, or while it was away).
function storedPreviews(run, previews) {
  let changed = false;
  for (const [nid, eid] of Object.entries(previews || {})) {
    const url = `/nodefarm/dashboard/preview?run=${encodeURIComponent(run.id)}&event=${encodeURIComponent(eid)}`;
    changed = setPreview(run, nid, url, eid) || changed;
  }
  return changed;
}

function setPreview(run, key, url, eid) {
  const known = run.previewIds[key];
  if (known && cmpId(known, eid) >= 0) return false; // what is shown is as new
  if (String(run.previews[key] || "").startsWith("blob:")) URL.revokeObjectURL(run.previews[key]);
  run.previews[key] = url;
  run.previewIds[key] = eid;
  return true;
}

function buildRun(run) {
  const d = run.detail;
  const graph = dag.layout(d.prompt);
  run.drawn = dag.draw(graph, d.prompt, (nid) => { run.picked = nid; paintRun(run); });
  replace(view,
    h("section", { class: "card", "aria-labelledby": "run-h" },
      h("div", { class: "run-head" }, h("h2", { id: "run-h" }, "Run ", h("code", {}, run.id)),
        h("span", { id: "run-status", class: "badge" }), h("span", { id: "run-times", class: "muted" }),
        h("span", { id: "run-actions", class: "actions" })),
      h("div", { class: "dag-wrap", id: "dag" }, run.drawn.root),
      h("div", { class: "legend", "aria-hidden": "true" },
        ["cached", "waiting", "running", "done", "failed", "blocked"].map((s) => h("span", { class: `badge st-${s}` }, s)))),
    h("div", { class: "grid" },
      section("run-error", "Error", h("div", { id: "run-error-body" })),
      section("run-node", "Node", h("div", { id: "run-node-body" }, h("p", { class: "muted" }, "Pick a node in the graph."))),
      section("run-images", "Images", h("div", { id: "run-images-body", class: "images" })),
      section("run-timeline", "Timeline", h("div", { id: "run-timeline-body" })),
      section("run-nodes", "Nodes", h("div", { id: "run-nodes-body", class: "scroll" }))));
}

function apply(run, ev, replayed = false) {
  const newer = cmpId(ev.id, run.lastEvent) > 0;
  if (!newer && !replayed) return;
  if (newer) run.lastEvent = ev.id;
  const d = run.detail;
  const at = Number(String(ev.id).split("-")[0]);
  const data = ev.data || {};
  const node = (nid) => (d.nodes[nid] = d.nodes[nid] || { state: "waiting", worker: null, start: null, end: null, value: 0, max: 1 });
  switch (ev.type) {
    case "execution_start": d.status = "running"; d.start = at; break;
    case "execution_cached": for (const nid of data.nodes || []) node(String(nid)).state = "cached"; break;
    case "progress_state":
      for (const [nid, e] of Object.entries(data.nodes || {})) {
        const n = node(nid);
        if (n.state === "cached") continue;
        n.value = e.value; n.max = e.max;
        if (e.worker) n.worker = e.worker;
        if (e.state === "running") { n.state = "running"; n.start = n.start || at; }
        else if (e.state === "finished") { n.state = "done"; n.end = n.end || at; }
      }
      break;
    case "executing":
      if (data.node && node(String(data.node)).state === "waiting") { node(String(data.node)).state = "running"; node(String(data.node)).start = at; }
      break;
    case "executed": d.outputs[String(data.node)] = data.output; break;
    case "execution_error":
      d.status = "failed"; d.error = data; d.end = at;
      if (data.node_id !== undefined && data.node_id !== null && d.nodes[String(data.node_id)]) {
        const n = node(String(data.node_id)); n.state = "failed"; n.end = at;
      }
      block(d);
      settle(run);
      break;
    case "execution_interrupted": d.status = "cancelled"; d.end = at; block(d); settle(run); break;
    case "execution_success": d.status = "done"; d.end = at; settle(run); break;
    case "preview": {
      const blob = new Blob([data.image], { type: data.mime || "image/jpeg" });
      const url = URL.createObjectURL(blob);
      if (!setPreview(run, data.node || "preview", url, ev.id)) URL.revokeObjectURL(url);
      break;
    }
    default: return;
  }
  paintRun(run);
}

// At the end of a run, the workers of nodes whose start the page did not see (the server knows who made each).
async function settle(run) {
  const r = await call("GET", `/nodefarm/dashboard/runs/${encodeURIComponent(run.id)}`);
  if (!r.ok || state.run !== run) return;
  for (const [nid, n] of Object.entries(r.data.nodes || {})) {
    const mine = run.detail.nodes[nid];
    if (mine && !mine.worker && n.worker) mine.worker = n.worker;
    if (mine && !mine.start && n.start) { mine.start = n.start; mine.end = mine.end || n.end; }
  }
  paintRun(run);
}

function block(d) {
  for (const n of Object.values(d.nodes)) if (n.state === "waiting" || n.state === "running") n.state = "blocked";
}

let runPainting = false;
function paintRun(run) {
  if (runPainting) return;
  runPainting = true;
  requestAnimationFrame(() => {
    runPainting = false;
    if (state.run !== run || !run.drawn) return;
    const d = run.detail;
    dag.update(run.drawn, d.nodes);
    const status = document.getElementById("run-status");
    status.className = `badge st-${d.status}`;
    status.dataset.status = d.status;
    status.textContent = d.status;
    document.getElementById("run-times").textContent = d.start
      ? ` ${new Date(d.start).toLocaleTimeString()} · ${duration((d.end || Date.now()) - d.start)}` : "";
    replace(document.getElementById("run-actions"),
      ["pending", "running"].includes(d.status)
        ? h("button", { type: "button", "aria-label": `Cancel run ${run.id}`, "data-action": "cancel", onclick: () => cancelRun(run.id) }, "Cancel") : null,
      ["failed", "cancelled"].includes(d.status)
        ? h("button", { type: "button", "aria-label": `Retry run ${run.id}`, onclick: () => retry(run.id) }, "Retry") : null);
    paintError(run);
    paintPicked(run);
    paintImages(run);
    paintTimeline(run);
    paintNodeTable(run);
  });
}

function paintError(run) {
  const e = run.detail.error;
  const el = document.getElementById("run-error-body");
  if (!e) return replace(el, h("p", { class: "muted" }, run.detail.status === "failed" ? "The run failed." : "No error."));
  replace(el,
    h("p", { class: "error", "data-error-node": e.node_id },
      "Node ", h("code", {}, `#${e.node_id}`), ` ${e.node_type || ""}: `, h("strong", {}, e.exception_type || "error")),
    h("p", { class: "error-message" }, e.exception_message || ""),
    (e.traceback || []).length ? h("details", { open: true }, h("summary", {}, "Traceback"),
      h("pre", { class: "traceback" }, (e.traceback || []).join(""))) : null);
}

function paintPicked(run) {
  const nid = run.picked;
  const el = document.getElementById("run-node-body");
  if (!nid) return;
  const n = run.detail.nodes[nid] || {};
  const spec = run.detail.prompt[nid] || {};
  const inputs = Object.entries(spec.inputs || {}).map(([k, v]) =>
    h("li", {}, h("code", {}, k), " = ", Array.isArray(v) ? `link from #${v[0]}` : JSON.stringify(v).slice(0, 120)));
  replace(el, h("p", {}, h("code", {}, `#${nid}`), ` ${dag.title(run.detail.prompt, nid)} (${spec.class_type || "?"})`),
    h("p", {}, `state: ${n.state || "waiting"}`, n.worker ? ` · worker ${n.worker}` : "", n.start && n.end ? ` · ${duration(n.end - n.start)}` : ""),
    h("ul", { class: "inputs" }, inputs));
}

function paintImages(run) {
  const el = document.getElementById("run-images-body");
  const items = [];
  for (const [nid, ui] of Object.entries(run.detail.outputs || {})) {
    for (const img of (ui && ui.images) || []) {
      if (img && img.filename) items.push(h("figure", { "data-node": nid },
        h("img", { src: viewUrl(img), alt: `${img.type || "output"} image ${img.filename} of node ${nid}`, class: "output", "data-kind": img.type || "output" }),
        h("figcaption", {}, `#${nid} ${img.filename}`)));
    }
  }
  for (const [nid, url] of Object.entries(run.previews)) {
    items.push(h("figure", { "data-node": nid }, h("img", { src: url, alt: `live preview of node ${nid}`, class: "preview" }), h("figcaption", {}, `preview #${nid}`)));
  }
  if (!items.length) return replace(el, h("p", { class: "muted" }, "No image yet."));
  const fresh = items.map((f) => f.querySelector("img").getAttribute("src")).join("|");
  if (el.dataset.srcs === fresh) return; // the same images: do not reload them
  el.dataset.srcs = fresh;
  replace(el, items);
}

function paintTimeline(run) {
  const el = document.getElementById("run-timeline-body");
  const nodes = Object.entries(run.detail.nodes).filter(([, n]) => n.start);
  if (!nodes.length) return replace(el, h("p", { class: "muted" }, "Nothing has run yet."));
  const t0 = Math.min(...nodes.map(([, n]) => n.start));
  const t1 = Math.max(...nodes.map(([, n]) => n.end || Date.now()), t0 + 1);
  const lanes = {};
  for (const [nid, n] of nodes) (lanes[n.worker || "?"] = lanes[n.worker || "?"] || []).push([nid, n]);
  replace(el, h("div", { class: "timeline", role: "list", "aria-label": "which worker ran what when" },
    Object.entries(lanes).sort().map(([worker, list]) => h("div", { class: "lane", role: "listitem" },
      h("span", { class: "lane-name" }, worker),
      h("div", { class: "lane-track" }, list.map(([nid, n]) => {
        const left = (100 * (n.start - t0)) / (t1 - t0);
        const width = Math.max(0.8, (100 * ((n.end || Date.now()) - n.start)) / (t1 - t0));
        return h("span", { class: `span st-${n.state}`, style: { left: left + "%", width: width + "%" },
                           title: `#${nid} ${dag.title(run.detail.prompt, nid)} on ${worker}: ${duration((n.end || Date.now()) - n.start)}` }, `#${nid}`);
      })))),
    h("div", { class: "muted" }, `0 … ${duration(t1 - t0)}`)));
}

function paintNodeTable(run) {
  const el = document.getElementById("run-nodes-body");
  const d = run.detail;
  replace(el, h("table", {}, h("thead", {}, h("tr", {}, ["node", "class", "state", "worker", "time"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, Object.keys(d.prompt).map((nid) => {
      const n = d.nodes[nid] || { state: "waiting" };
      return h("tr", { "data-node": nid, "data-state": n.state },
        h("td", {}, `#${nid}`), h("td", {}, d.prompt[nid].class_type || "?"),
        h("td", {}, h("span", { class: `badge st-${n.state}` }, n.state)), h("td", {}, n.worker || "—"),
        h("td", {}, n.start && n.end ? duration(n.end - n.start) : "—"));
    }))));
}

// ---- submit ---------------------------------------------------------------------------------------

function showSubmit() {
  document.title = "submit · nodefarm";
  const result = h("div", { id: "submit-result", role: "status", "aria-live": "polite" });
  const file = h("input", { type: "file", id: "submit-file", accept: ".json,.png,application/json,image/png" });
  const drop = h("label", { for: "submit-file", class: "drop", id: "drop" },
    h("strong", {}, "Drop an API-format JSON, or a PNG made by SaveImage (it carries its prompt), here"),
    h("span", {}, " or choose a file: "), file);
  file.addEventListener("change", () => { if (file.files[0]) submitFile(file.files[0], result); });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (f) submitFile(f, result);
  });
  const select = h("select", { id: "example", "aria-label": "Example workflow" }, h("option", { value: "" }, "choose an example…"));
  const go = h("button", { type: "button", id: "run-example", onclick: () => {
    const ex = state.examples && state.examples[select.value];
    if (ex) send(ex.prompt, result, select.value);
  } }, "Run example");
  const note = h("p", { id: "example-note", class: "muted", "aria-live": "polite" });
  select.addEventListener("change", () => { // what would stop it, before it is sent
    const ex = state.examples && state.examples[select.value];
    note.textContent = ex && ex.problem ? `This farm cannot run ${select.value} as it is: ${ex.problem}` : "";
  });
  replace(view, section("submit", "Submit a run", drop,
    h("p", {}, h("label", { for: "example" }, "Or run one of examples/: "), select, " ", go), note, result));
  loadExamples(select);
}

async function loadExamples(select) {
  if (!state.examples) {
    const r = await call("GET", "/nodefarm/dashboard/examples");
    state.examples = r.ok ? r.data : {};
  }
  for (const [name, ex] of Object.entries(state.examples)) {
    select.append(h("option", { value: name }, ex.problem ? `${name} (cannot run here)` : name));
  }
}

async function submitFile(f, result) {
  try {
    let prompt;
    if (f.type === "image/png" || /\.png$/i.test(f.name)) prompt = await promptFromPng(await f.arrayBuffer());
    else prompt = JSON.parse(await f.text());
    await send(prompt, result, f.name);
  } catch (err) {
    replace(result, h("p", { class: "error" }, `${f.name}: ${err.message}`));
  }
}

async function send(body, result, name) {
  // a whole /prompt body ({"prompt": {...}, ...}) or the bare prompt
  const isBody = body && typeof body.prompt === "object" && !Array.isArray(body.prompt) && !("class_type" in body.prompt);
  const prompt = isBody ? body.prompt : body;
  replace(result, h("p", {}, `Submitting ${name}…`));
  const r = await submit(prompt, { extra: isBody && body.extra_data ? body.extra_data : undefined });
  if (r.ok) {
    location.hash = `#/run/${encodeURIComponent(r.data.prompt_id)}`;
    return;
  }
  const nodeErrors = (r.data && r.data.node_errors) || {};
  replace(result,
    h("p", { class: "error" }, `Not submitted: ${errorText(r)}`),
    Object.keys(nodeErrors).length ? h("ul", { class: "node-errors" }, Object.entries(nodeErrors).map(([nid, e]) =>
      h("li", { "data-node": nid }, h("code", {}, `#${nid}`), ` ${e.class_type || ""}: `,
        (e.errors || []).map((x) => [x.message, x.details].filter(Boolean).join(": ")).join("; ")))) : null);
}

// ---- start ----------------------------------------------------------------------------------------

window.nodefarmDashboard = true; // the page's inline script shows an error when this never happens
window.addEventListener("hashchange", route);
route();
setInterval(() => { if (state.run && state.run.detail && state.run.detail.status === "running") paintRun(state.run); }, 1000);
