/* labelloop page: HTTP calls and DOM helpers. Every text goes in through textContent. */
"use strict";

const Api = {
  token() { return sessionStorage.getItem("labelloop.token") || ""; },
  setToken(t) { sessionStorage.setItem("labelloop.token", t); },
  headers() {
    const h = { "content-type": "application/json" };
    const t = Api.token();
    if (t) h["authorization"] = "Bearer " + t;
    return h;
  },
  async call(method, path, body, opts) {
    const res = await fetch(path, Object.assign({
      method, headers: Api.headers(), body: body === undefined ? undefined : JSON.stringify(body),
    }, opts || {}));
    const text = await res.text();
    let doc = null;
    try { doc = text ? JSON.parse(text) : null; } catch (e) { doc = { detail: text }; }
    if (!res.ok) {
      const detail = doc && doc.detail !== undefined ? doc.detail : res.statusText;
      const err = new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
      err.status = res.status;
      throw err;
    }
    return doc;
  },
  get(path) { return Api.call("GET", path); },
  post(path, body) { return Api.call("POST", path, body); },
};

/* el("div", {class: "x", onclick: f}, "text", child, ...): strings become text nodes, never HTML. */
function el(tag, attrs, ...children) {
  const node = document.createElementNS(
    ["svg", "path", "line", "circle", "text", "g", "rect", "polyline", "polygon"].includes(tag)
      ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml", tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
  return node;
}

function toast(message) {
  const t = document.getElementById("toast");
  t.textContent = message;
  t.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove("show"), 2500);
}

function fmt(x, digits) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  return typeof x === "number" ? x.toFixed(digits === undefined ? 3 : digits) : String(x);
}
