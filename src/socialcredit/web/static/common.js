/* Shared by every page: the top bar, the run picker, fetching /api, the chart look of analysis/theme.py. */
"use strict";

const SC = (() => {
  const FONT = '-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", ' +
    '"Liberation Sans", sans-serif';
  const C = {ink: "#1f2933", muted: "#616e7c", grid: "#e9ecf1", line: "#cbd2d9", blue: "#2f6fb0", red: "#c8493a",
    teal: "#1f9e89", amber: "#e39b2b", purple: "#7a5aa6", grey: "#8d99a6"};
  const PAGES = [["/", "Overview"], ["/citizens", "Citizens"], ["/shame", "Shame board"], ["/lists", "Lists & bans"],
    ["/audit", "Audit"]];
  const params = new URLSearchParams(location.search);

  function rgba(hex, a) {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${n >> 16},${(n >> 8) & 255},${n & 255},${a})`;
  }

  function axis(extra) {
    return Object.assign({gridcolor: C.grid, linecolor: C.line, zeroline: false, ticks: "outside", tickcolor: C.line,
      ticklen: 4, automargin: true, title: {font: {size: 12, color: C.muted}, standoff: 10}}, extra || {});
  }

  /** The report's plotly layout (theme.layout), updated with extra. */
  function layout(extra, top) {
    return Object.assign({
      font: {family: FONT, size: 12, color: C.ink}, colorway: [C.blue, C.red, C.teal, C.amber, C.purple, C.grey],
      paper_bgcolor: "#ffffff", plot_bgcolor: "#ffffff", margin: {l: 56, r: 24, t: top === undefined ? 44 : top, b: 48},
      legend: {orientation: "h", yref: "container", y: 1, yanchor: "top", xanchor: "left", x: 0, font: {size: 11},
        bgcolor: "rgba(0,0,0,0)"},
      hoverlabel: {font: {family: FONT}}, xaxis: axis(), yaxis: axis(), bargap: 0.15,
    }, extra || {});
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  async function api(path) {
    const response = await fetch("/api" + path, {headers: {Accept: "application/json"}});
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail))
        : response.statusText;
      throw new Error(detail);
    }
    return body;
  }

  function num(v, digits) {
    if (v === null || v === undefined) return "n/a";
    if (typeof v === "boolean") return v ? "yes" : "no";
    if (typeof v !== "number") return String(v);
    if (digits !== undefined) return v.toLocaleString("en-US", {minimumFractionDigits: digits, maximumFractionDigits: digits});
    if (Number.isInteger(v)) return v.toLocaleString("en-US");
    const m = Math.abs(v);
    if (m >= 10000) return v.toLocaleString("en-US", {maximumFractionDigits: 0});
    if (m >= 100) return v.toLocaleString("en-US", {maximumFractionDigits: 1});
    if (m >= 1) return v.toFixed(2);
    return v.toPrecision(3);
  }

  function pct(v) { return v === null || v === undefined ? "n/a" : (Math.abs(v) >= 0.1 ? (v * 100).toFixed(1) : (v * 100).toFixed(2)) + "%"; }

  function plot(target, data, lay, height) {
    const node = typeof target === "string" ? document.getElementById(target) : target;
    node.classList.add("plot");
    node.style.height = (height || lay.height || 360) + "px";
    const l = Object.assign({}, lay);
    delete l.height;
    delete l.width;
    l.autosize = true;
    return Plotly.newPlot(node, data, l, {responsive: true, displayModeBar: false});
  }

  function table(columns, rows, rowClass) {
    return el("table", {class: "data"},
      el("thead", {}, el("tr", {}, columns.map((c) => el("th", {class: c.text ? "text" : null}, c.label)))),
      el("tbody", {}, rows.map((r) => el("tr", {class: rowClass ? rowClass(r) : null},
        columns.map((c) => {
          const v = c.value ? c.value(r) : r[c.key];
          return el("td", {class: [c.text ? "text" : "", c.wrap ? "wrap" : "", c.flag && c.flag(r) ? "flag" : ""]
            .join(" ").trim() || null},
            v instanceof Node ? v : (c.format ? c.format(v, r) : num(v)));
        })))));
  }

  function error(where, exc) {
    const node = typeof where === "string" ? document.getElementById(where) : where;
    node.replaceChildren(el("div", {class: "error", role: "alert"}, exc.message || String(exc)));
  }

  function loading(where, text) {
    const node = typeof where === "string" ? document.getElementById(where) : where;
    node.replaceChildren(el("div", {class: "loading"}, text || "Loading…"));
  }

  /** Build the top bar; resolve the current run (?run=, then the last one used, then the first). */
  async function init(options) {
    const opts = options || {};
    const {runs} = await api("/runs");
    const names = runs.map((r) => r.name);
    let run = params.get("run");
    if (!names.includes(run)) run = names.includes(localStorage.getItem("sc-run")) ? localStorage.getItem("sc-run") : names[0];
    localStorage.setItem("sc-run", run);
    const select = el("select", {id: "run-select", "aria-label": "run", onchange: (e) => go({run: e.target.value})},
      runs.map((r) => el("option", {value: r.name, selected: r.name === run},
        `${r.name} — ${r.scenario}, ${num(r.citizens)} × ${num(r.days)} d`)));
    const here = location.pathname.replace(/\/$/, "") || "/";
    const nav = el("nav", {class: "nav"}, PAGES.map(([href, label]) =>
      el("a", {href: href + "?run=" + encodeURIComponent(run), class: href === here ? "active" : null}, label)));
    document.getElementById("topbar").replaceChildren(el("div", {class: "wrap"},
      el("div", {class: "brand"}, "socialcredit ", el("span", {}, "dashboard")), nav,
      el("label", {class: "runpick"}, opts.runLabel || "run", select)));
    document.getElementById("footer").replaceChildren(el("div", {class: "wrap"},
      "Synthetic citizens only: integer ids with synthetic attributes, generated avatars, no real personal data. " +
      "Read-only view of the run directories; data from the JSON API at ", el("a", {href: "/docs"}, "/api"), "."));
    return {runs, run, info: runs.find((r) => r.name === run)};
  }

  function go(changes) {
    const p = new URLSearchParams(location.search);
    for (const [k, v] of Object.entries(changes)) {
      if (v === null || v === undefined || v === "") p.delete(k); else p.set(k, v);
    }
    location.search = p.toString();
  }

  function facts(info) {
    return el("ul", {class: "facts"},
      el("li", {}, "scenario ", el("b", {}, info.scenario)),
      el("li", {}, el("b", {}, num(info.citizens)), " citizens"),
      el("li", {}, el("b", {}, num(info.days)), " days"),
      el("li", {}, "seed ", el("b", {}, info.seed)),
      info.panel ? el("li", {}, "panel ", el("b", {}, num(info.panel))) : null,
      info.finished ? el("li", {}, "finished ", el("b", {}, info.finished)) : null);
  }

  function avatar(run, citizen, size) {
    return el("img", {src: `/api/runs/${encodeURIComponent(run)}/citizens/${citizen}/avatar.svg`, width: size || 28,
      height: size || 28, alt: `identicon of citizen ${citizen}`, loading: "lazy"});
  }

  return {C, FONT, rgba, axis, layout, el, api, num, pct, plot, table, error, loading, init, go, params, facts, avatar};
})();
