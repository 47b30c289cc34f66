/* Audit: the scenario's rules against the law, and four-fifths disparate impact in the run. */
"use strict";

(async () => {
  const {el, num} = SC;
  let ctx;
  try { ctx = await SC.init(); } catch (e) { SC.error("header", e); return; }
  const R = encodeURIComponent(ctx.run);
  const header = document.getElementById("header");
  header.replaceChildren(el("p", {class: "eyebrow"}, "Audit"), el("h1", {}, `Is it lawful? ${ctx.info.scenario}`),
    el("p", {class: "lede"}, "The run's scenario read against the EU AI Act's ban on social scoring (Art. 5(1)(c)), " +
      "notice, reasons and appeal; and the four-fifths rule on outcomes by group: each group's favourable-outcome " +
      "rate divided by the highest group's rate."), SC.facts(ctx.info));
  const content = document.getElementById("content");
  SC.loading(content, "Auditing…");
  let d;
  try { d = await SC.api(`/runs/${R}/audit`); } catch (e) { SC.error(content, e); return; }
  if (!d.available) {
    content.replaceChildren(el("div", {class: "card", id: "audit-unavailable"}, el("div", {class: "notice"}, d.message)));
    return;
  }
  const impact = d.disparate_impact;
  const adverse = impact.filter((r) => r.adverse_impact);
  header.append(el("div", {class: "tiles", id: "audit-tiles"},
    el("div", {class: "tile" + (d.findings.length ? " bad" : "")}, el("div", {class: "value"}, num(d.findings.length)),
      el("div", {class: "label"}, "findings in the scenario's rules")),
    el("div", {class: "tile" + (adverse.length ? " bad" : "")}, el("div", {class: "value"}, num(adverse.length)),
      el("div", {class: "label"}, "group outcomes below 0.8 of the best group"))));
  const outcomes = [...new Set(impact.map((r) => r.outcome))];
  const label = {never_listed: "never listed", score_ge_600: "platform score ≥ 600", points_ge_960: "municipal points ≥ 960"};
  const pretty = (o) => label[o] || o.replaceAll("_", " ").replace(" ge ", " ≥ ").replace(" lt ", " < ");
  content.replaceChildren(
    el("h2", {class: "section-title"}, "Findings"),
    el("section", {class: "card", id: "findings"}, d.findings.length
      ? SC.table([{label: "finding", key: "title", text: true}, {label: "rule", value: (r) => el("code", {}, r.key_path), text: true},
        {label: "detail", key: "detail", text: true}, {label: "standard", key: "law", text: true}], d.findings)
      : el("p", {class: "empty"}, "No findings: the rules pass every check."),
      d.message ? el("div", {class: "notice"}, d.message) : null),
    el("h2", {class: "section-title"}, "Disparate impact"),
    el("p", {class: "section-lede"}, "Ratio = group's favourable-outcome rate ÷ the highest group's rate in the same " +
      "grouping (lowest/highest, as fairlearn). Below 0.8 is adverse impact under the four-fifths rule. Regions: only " +
      "the flagged ones are listed in the table."),
    el("section", {class: "card", id: "impact-card"}, el("div", {id: "plot-impact"})),
    el("section", {class: "card", id: "impact-table", style: "margin-top:18px"},
      SC.table([{label: "outcome", value: (r) => pretty(r.outcome), text: true, format: (v) => v},
        {label: "grouping", key: "grouping", text: true}, {label: "group", key: "group", text: true},
        {label: "citizens", key: "citizens"}, {label: "rate", key: "rate", format: (v) => num(v, 3)},
        {label: "ratio to highest", key: "ratio_to_highest", format: (v) => v === null ? "n/a" : num(v, 3),
          flag: (r) => r.adverse_impact}],
      impact.filter((r) => r.grouping !== "region" || r.adverse_impact), (r) => r.adverse_impact ? "bad" : null)));
  const shown = impact.filter((r) => r.grouping !== "region");
  const traces = outcomes.map((o, i) => {
    const rows = shown.filter((r) => r.outcome === o);
    return {type: "bar", name: pretty(o), x: rows.map((r) => `${r.grouping}: ${r.group}`),
      y: rows.map((r) => r.ratio_to_highest), marker: {color: SC.layout().colorway[i],
        line: {width: rows.map((r) => r.adverse_impact ? 2 : 0), color: SC.C.red}},
      hovertemplate: "%{x}: %{y:.3f}<extra>" + (pretty(o)) + "</extra>"};
  });
  SC.plot("plot-impact", traces, SC.layout({barmode: "group", hovermode: "closest",
    shapes: [{type: "line", xref: "paper", x0: 0, x1: 1, y0: 0.8, y1: 0.8, line: {color: SC.C.red, dash: "dash", width: 1.5}}],
    yaxis: SC.axis({title: {text: "ratio to the highest group"}, range: [0, 1.08]}), xaxis: SC.axis({tickangle: -30})}), 380);
})();
