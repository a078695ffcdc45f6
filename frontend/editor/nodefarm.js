// nodefarm's extension of the official ComfyUI editor, served like a custom node pack's web
// extension (/extensions/nodefarm/nodefarm.js): progress as deltas (below) and the "Farm" sidebar tab.
//
// Progress: ComfyUI sends the whole progress registry of a prompt in every `progress_state` frame,
// so a run of n nodes costs O(n^2) bytes. nodefarm sends this page only the entries that changed
// (`nodefarm.progress_delta`, asked for with a `nodefarm.flags` message on each new socket); here
// they are folded back into ComfyUI's full frames and handed to the editor as `progress_state`
// events, once per animation frame, which is when the editor applies them anyway.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const registries = new Map(); // prompt_id -> {node_id: entry}
const dirty = new Set();
let scheduled = false;
let flaggedSocket = null;

function flush() {
  scheduled = false;
  for (const promptId of dirty) {
    const nodes = registries.get(promptId);
    if (nodes) api.dispatchCustomEvent("progress_state", { prompt_id: promptId, nodes: { ...nodes } });
  }
  dirty.clear();
}

function onDelta({ detail }) {
  if (!detail || !detail.prompt_id) return;
  const nodes = registries.get(detail.prompt_id) ?? {};
  Object.assign(nodes, detail.nodes);
  registries.set(detail.prompt_id, nodes);
  dirty.add(detail.prompt_id);
  if (!scheduled) {
    scheduled = true;
    requestAnimationFrame(flush);
  }
}

function onEnd({ detail }) {
  const promptId = detail?.prompt_id;
  if (!promptId) return;
  if (dirty.has(promptId)) flush();
  registries.delete(promptId);
}

// Each (re)connected socket says that this page takes progress as deltas.
function askForDeltas() {
  const socket = api.socket;
  if (!socket || socket === flaggedSocket || socket.readyState !== WebSocket.OPEN) return;
  socket.send(JSON.stringify({ type: "nodefarm.flags", data: { progress_delta: true } }));
  flaggedSocket = socket;
}

// The "Farm" sidebar tab: the farm's workers and queue (GET /nodefarm/dashboard/snapshot, api/dashboard.py), so
// editor users see where their run is. Refreshed on the socket's status events (the queue changed) and every 2 s
// while the tab is open; the whole dashboard is one link away.
function farmTab(root) {
  const box = document.createElement("div");
  box.className = "nodefarm-farm";
  box.style.cssText = "padding:0.6rem;font-size:13px;line-height:1.45;overflow:auto;height:100%";
  root.replaceChildren(box);
  const el = (tag, text, style) => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (style) e.style.cssText = style;
    return e;
  };
  let shown = false; // the editor may call render before it mounts the element
  async function refresh() {
    if (!box.isConnected) return shown ? stop() : undefined;
    shown = true;
    let snap;
    try {
      const res = await fetch("/nodefarm/dashboard/snapshot", { credentials: "same-origin" });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      snap = await res.json();
    } catch (err) {
      box.replaceChildren(el("p", `The farm does not answer: ${err.message}`));
      return;
    }
    const link = el("a", "Open the farm dashboard");
    link.href = "/nodefarm/";
    link.target = "_blank";
    link.rel = "noopener";
    const workers = el("ul", undefined, "padding-left:1rem;margin:0.3rem 0");
    for (const w of snap.workers) {
      const doing = w.running.map((r) => `node ${r.node} of ${r.prompt_id.slice(0, 8)} ${Math.round((100 * r.value) / (r.max || 1))}%`).join(", ");
      workers.append(el("li", `${w.name} (${w.host}) ${w.state}${doing ? ": " + doing : ""}`));
    }
    const queue = el("ol", undefined, "padding-left:1.2rem;margin:0.3rem 0");
    const mine = api.clientId || api.initialClientId;
    for (const [status, list] of [["running", snap.queue.running], ["pending", snap.queue.pending]]) {
      for (const j of list) {
        const item = el("li", `${j.id.slice(0, 8)} ${status}${j.submitter ? " · " + j.submitter : ""}${j.submitter === mine ? " (yours)" : ""}`);
        item.dataset.run = j.id;
        queue.append(item);
      }
    }
    box.replaceChildren(link, el("h4", `Workers (${snap.workers.length})`, "margin:0.6rem 0 0"),
      snap.workers.length ? workers : el("p", "No live worker."),
      el("h4", `Queue (${snap.queue.running.length} running, ${snap.queue.pending_total ?? snap.queue.pending.length} pending)`, "margin:0.6rem 0 0"),
      queue.children.length ? queue : el("p", "The queue is empty."));
  }
  const timer = setInterval(refresh, 2000);
  const onStatus = () => refresh();
  api.addEventListener("status", onStatus);
  function stop() {
    clearInterval(timer);
    api.removeEventListener("status", onStatus);
  }
  refresh();
}

app.registerExtension({
  name: "nodefarm.progress",
  setup() {
    if (typeof app.extensionManager?.registerSidebarTab === "function") {
      app.extensionManager.registerSidebarTab({
        id: "nodefarm-farm", icon: "pi pi-server", title: "Farm", tooltip: "nodefarm: the farm's workers and queue",
        type: "custom", render: farmTab,
      });
    }
    api.addEventListener("nodefarm.progress_delta", onDelta);
    for (const end of ["execution_success", "execution_error", "execution_interrupted"]) {
      api.addEventListener(end, onEnd);
    }
    api.addEventListener("status", askForDeltas);
    api.addEventListener("reconnected", askForDeltas);
    askForDeltas();
  },
});
