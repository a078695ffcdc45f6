// Small DOM helpers: every text goes in as text (never as markup), every handler with addEventListener
// (the farm's Content-Security-Policy forbids inline handlers).

export function h(tag, attrs = {}, ...children) {
  const ns = tag.startsWith("svg:") ? "http://www.w3.org/2000/svg" : null;
  const el = ns ? document.createElementNS(ns, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

export function svg(tag, attrs = {}, ...children) {
  return h("svg:" + tag, attrs, ...children);
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function bytes(n) {
  if (!n && n !== 0) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function bar(label, used, total, extra = "") {
  const pct = total ? Math.max(0, Math.min(100, (100 * used) / total)) : 0;
  return h("div", { class: "bar", role: "meter", "aria-label": label, "aria-valuemin": 0, "aria-valuemax": 100,
                    "aria-valuenow": Math.round(pct), title: `${label}: ${bytes(used)} of ${bytes(total)} ${extra}` },
    h("span", { class: "fill", style: { width: pct + "%" } }),
    h("span", { class: "bar-text" }, `${label} ${bytes(used)} / ${bytes(total)}`));
}

export function progress(label, value, max) {
  const pct = max ? Math.max(0, Math.min(100, (100 * value) / max)) : 0;
  return h("div", { class: "bar progress", role: "progressbar", "aria-label": label, "aria-valuemin": 0,
                    "aria-valuemax": 100, "aria-valuenow": Math.round(pct) },
    h("span", { class: "fill", style: { width: pct + "%" } }),
    h("span", { class: "bar-text" }, `${Math.round(pct)}%`));
}

export function viewUrl(image) {
  const q = new URLSearchParams({ filename: image.filename, subfolder: image.subfolder || "", type: image.type || "output" });
  return "/view?" + q.toString();
}
