/* Overview: headline metrics and the report's charts for one run, or two side by side. */
"use strict";

(async () => {
  const {el, num} = SC;
  let ctx;
  try { ctx = await SC.init(); } catch (e) { SC.error("header", e); return; }
  const others = ctx.runs.filter((r) => r.name !== ctx.run);
  const compare = others.some((r) => r.name === SC.params.get("compare")) ? SC.params.get("compare") : null;
  const names = compare ? [ctx.run, compare] : [ctx.run];

  const picker = others.length ? el("label", {},
    "show side by side with",
    el("select", {id: "compare-select", onchange: (e) => SC.go({compare: e.target.value})},
      el("option", {value: ""}, "— nothing —"),
      others.map((r) => el("option", {value: r.name, selected: r.name === compare}, r.name)))) : null;

  const header = document.getElementById("header");
  SC.loading("content", "Building the charts…");
  let summaries;
  try {
    summaries = await Promise.all(names.map((n) => SC.api("/runs/" + encodeURIComponent(n))));
  } catch (e) { SC.error("header", e); return; }
  const [a, b] = summaries;
  const title = compare ? `${a.run.name} vs ${b.run.name}` : `${a.run.scenario}: ${a.run.name}`;
  document.title = `${title} · socialcredit dashboard`;
  const otherBy = b ? Object.fromEntries(b.headline.map((t) => [t.key, t.value])) : {};
  header.replaceChildren(
    el("p", {class: "eyebrow"}, compare ? "Overview · two runs side by side" : "Overview"),
    el("h1", {}, title),
    el("p", {class: "lede"}, a.run.description || ""),
    SC.facts(a.run),
    b ? el("div", {}, el("span", {class: "pair-label"}, "compared with "), SC.facts(b.run)) : "",
    a.systems && a.systems.length ? el("details", {id: "systems"}, el("summary", {},
      `What ${a.run.name} runs: ${a.systems.length} system${a.systems.length === 1 ? "" : "s"}`),
    el("ul", {class: "systems-list"}, a.systems.map((x) => el("li", {}, el("b", {}, x.kind), " ", el("code", {}, x.key),
      " — " + x.text)))) : "",
    el("div", {class: "tiles", id: "tiles"}, a.headline.map((t) => el("div", {class: "tile", "data-key": t.key},
      el("div", {class: "value"}, t.value, b ? el("span", {class: "other", title: b.run.name},
        "vs " + (otherBy[t.key] ?? "n/a")) : null),
      el("div", {class: "label"}, t.label), el("div", {class: "key"}, t.key)))),
    el("div", {class: "controls"}, picker || ""));

  let charts;
  try {
    charts = await Promise.all(names.map((n) => SC.api(`/runs/${encodeURIComponent(n)}/charts`)));
  } catch (e) { SC.error("content", e); return; }
  const content = document.getElementById("content");
  content.replaceChildren();
  // sections and charts of every run shown, in the first run's order, then any only the second run has
  const sections = [];
  charts.forEach((c) => c.groups.forEach((group) => {
    let section = sections.find((s) => s.id === group.id);
    if (!section) sections.push(section = {id: group.id, title: group.title, lede: group.lede, ids: []});
    group.charts.forEach((chart) => { if (!section.ids.includes(chart.id)) section.ids.push(chart.id); });
  }));
  const find = (c, id) => c.groups.flatMap((g) => g.charts).find((x) => x.id === id);
  sections.forEach((section) => {
    content.append(el("h2", {class: "section-title"}, section.title));
    if (section.lede && !compare) content.append(el("p", {class: "section-lede"}, section.lede));
    const grid = el("div", {class: "grid"});
    content.append(grid);
    section.ids.forEach((id) => {
      if (!compare) {
        const chart = find(charts[0], id);
        grid.append(card(chart, chart.wide, null));
        return;
      }
      charts.forEach((c, ri) => {
        const chart = find(c, id);
        grid.append(chart ? card(chart, false, names[ri]) : absent(find(charts[1 - ri], id), names[ri], c));
      });
    });
  });
  const omitted = charts[0].omitted || [];
  if (omitted.length && !compare) {
    content.append(el("h2", {class: "section-title"}, "Not shown for this run"),
      el("section", {class: "card", id: "omitted"}, el("ul", {class: "omitted-list"},
        omitted.map((o) => el("li", {}, el("b", {}, o.title), ": " + o.reason)))));
  }

  function absent(chart, tag, c) {
    const why = (c.omitted || []).find((o) => chart.title.toLowerCase().includes(o.title.toLowerCase().split(" (")[0]));
    return el("section", {class: "card skipped", id: "chart-" + chart.id + "-" + tag},
      el("h3", {}, chart.title, el("span", {class: "tag"}, tag)),
      el("div", {class: "skip"}, "Not in this run" + (why ? ": " + why.reason : " (its scenario lacks the system).")));
  }

  function card(chart, wide, tag) {
    const plotDiv = el("div", {class: "plot", "data-chart": chart.id});
    const node = el("section", {class: "card" + (wide ? " wide" : "") + (chart.figure ? "" : " skipped"),
      id: "chart-" + chart.id + (tag ? "-" + tag : "")},
      el("h3", {}, chart.title, tag ? el("span", {class: "tag"}, tag) : null),
      el("p", {class: "caption"}, chart.caption),
      chart.figure ? plotDiv : el("div", {class: "skip"}, "Not drawn: " + chart.note),
      chart.figure && chart.note ? el("p", {class: "note"}, chart.note) : null,
      chart.table ? el("details", {open: chart.table.open},
        el("summary", {}, chart.table.summary),
        el("table", {class: "data"},
          el("thead", {}, el("tr", {}, chart.table.header.map((h) => el("th", {}, h)))),
          el("tbody", {}, chart.table.rows.map((row) => el("tr", {}, row.map((cell) => {
            const flagged = typeof cell === "string" && cell.startsWith("!");
            return el("td", {class: flagged ? "flag" : null}, flagged ? cell.slice(1) : num(cell));
          })))))) : null);
    if (chart.figure) {
      requestAnimationFrame(() => {
        const lay = chart.figure.layout || {};
        SC.plot(plotDiv, chart.figure.data, lay, chart.height);
      });
    }
    return node;
  }
})();
