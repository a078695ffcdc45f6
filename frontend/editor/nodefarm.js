// nodefarm's extension of the official ComfyUI editor, served like a custom node pack's web
// extension (/extensions/nodefarm/nodefarm.js).
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

app.registerExtension({
  name: "nodefarm.progress",
  setup() {
    api.addEventListener("nodefarm.progress_delta", onDelta);
    for (const end of ["execution_success", "execution_error", "execution_interrupted"]) {
      api.addEventListener(end, onEnd);
    }
    api.addEventListener("status", askForDeltas);
    api.addEventListener("reconnected", askForDeltas);
    askForDeltas();
  },
});
