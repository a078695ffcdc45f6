// The dashboard is served by the API at /nodefarm/ (api/routes/editor.py), its bundle at /nodefarm/assets/.
// One module script, no inline code: the farm's Content-Security-Policy (api/browser.py) allows scripts from the
// farm only, and the page needs no network beyond the farm (everything is bundled, no CDN).
import { defineConfig } from "vite";

export default defineConfig({
  base: "/nodefarm/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: "es2020",
  },
});
