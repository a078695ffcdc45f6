// A nested module of the extension folder (listed by /extensions and loaded by the editor too).
export const helperLoaded = true;
window.__editorTestHelper = true;
