// nodefarm: imported first by custom node scripts written for the legacy editor (scripts that use the
// editor's `app`/`api` as globals; see api/routes/editor.py). Served at /nodefarm/editor_compat.js.
import { app } from "../scripts/app.js";

if (!window.__nodefarmEditorCompat) {
  window.__nodefarmEditorCompat = true;
  app.registerExtension({
    name: "nodefarm.legacyExtensionCompat",
    nodeCreated(node) {
      // Legacy extensions test `node.type` in nodeCreated (as the custom node docs show), but the
      // editor runs nodeCreated inside the node's constructor and sets `type` only after it returns.
      // Give the node now the type LiteGraph assigns right after (its class name).
      if (!node.type && node.comfyClass) {
        node.type = node.comfyClass;
      }
    },
  });
}
