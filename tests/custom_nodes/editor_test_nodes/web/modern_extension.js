// An extension written the current way: it imports the editor's app itself, so it is served untouched.
import { app } from "../../scripts/app.js";

app.registerExtension({
  name: "editor_test.modern",
  async setup() {
    window.__editorTestModern = (window.__editorTestModern || 0) + 1;
  },
});
