/* Citizen explorer: search by id or pick from lists; the explain view (a replay of the run, cached server-side). */
"use strict";

(async () => {
  const {el, num, C} = SC;
  let ctx;
  try { ctx = await SC.init(); } catch (e) { SC.error("header", e); return; }
  const run = ctx.run;
  const R = encodeURIComponent(run);
  const maxId = ctx.info.citizens - 1;

  const input = el("input", {type: "number", id: "citizen-input", placeholder: `0 … ${maxId}`,
    "aria-label": "citizen id"});
  const form = el("form", {class: "controls", id: "search", onsubmit: (e) => {
    e.preventDefault();
    if (input.value !== "") show(Number(input.value));
  }}, el("label", {}, "citizen id", input), el("button", {type: "submit"}, "Explain"));
  document.getElementById("header").replaceChildren(
    el("p", {class: "eyebrow"}, "Citizen explorer"),
    el("h1", {}, `Why did this happen to citizen …?`),
    el("p", {class: "lede"}, "Pick a citizen to see the timeline of true and observed events, the decomposition of " +
      "every score with reason codes, every sanction and the rule behind it, and the counterfactual: the same world " +
      "with no camera misattribution. The run is replayed for each citizen (a few seconds the first time)."),
    SC.facts(ctx.info), form);

  const side = el("aside", {class: "card", id: "picks"});
  const view = el("div", {id: "explain"});
  document.getElementById("content").replaceChildren(el("div", {class: "layout-side"}, side, view));
  view.append(el("div", {class: "card"}, el("p", {class: "empty"}, "Search for an id or choose a citizen from a list.")));

  const LISTS = [["penalised", "Penalised"], ["misattributed", "Innocents"], ["listed", "Listed"],
    ["refused", "Refused"]];
  const listBox = el("div", {id: "pick-list"});
  const desc = el("p", {class: "caption"});
  const tabs = el("div", {class: "tabs", role: "tablist"}, LISTS.map(([k, label]) =>
    el("button", {type: "button", "data-list": k, role: "tab", onclick: () => loadList(k)}, label)));
  side.append(el("h3", {}, "Pick a citizen"), tabs, desc, listBox);

  async function loadList(kind) {
    tabs.querySelectorAll("button").forEach((b) => b.classList.toggle("on", b.dataset.list === kind));
    SC.loading(listBox);
    try {
      const data = await SC.api(`/runs/${R}/picks/${kind}?limit=40`);
      desc.textContent = data.description;
      if (!data.citizens.length) { listBox.replaceChildren(el("p", {class: "empty"}, "Nobody in this run.")); return; }
      listBox.replaceChildren(el("ul", {class: "picklist"}, data.citizens.map((c) =>
        el("li", {"data-citizen": c.citizen, onclick: () => show(c.citizen)}, SC.avatar(run, c.citizen),
          el("div", {}, el("div", {class: "who"}, `#${c.citizen}`, c.listed ? el("span", {class: "badge red"}, "listed") : null),
            el("div", {class: "what"}, kind === "misattributed"
              ? `${c.misattributed} of ${c.penalties} penalties for others' acts · ${c.summary}`
              : (c.summary || c.region_name) + (kind === "listed" ? ` · since day ${c.listed_since}` : "")))))));
    } catch (e) { SC.error(listBox, e); }
  }

  async function show(citizen) {
    input.value = citizen;
    const url = new URL(location.href);
    url.searchParams.set("citizen", citizen);
    history.replaceState(null, "", url);
    listBox.querySelectorAll("li").forEach((li) => li.classList.toggle("current", Number(li.dataset.citizen) === citizen));
    view.replaceChildren(el("div", {class: "card"}, el("div", {class: "loading"},
      `Replaying the run for citizen ${citizen}…`)));
    let x;
    try { x = await SC.api(`/runs/${R}/citizens/${citizen}/explain`); } catch (e) { SC.error(view, e); return; }
    render(x);
  }

  const label = (k) => k.replaceAll("_", " ");

  function render(x) {
    const p = x.profile, f = x.final, cf = x.counterfactual;
    const innocentHits = x.events.filter((e) => e.misattributed && e.attributed_to === x.citizen).length;
    const refused = Object.entries(f).filter(([k]) => k.startsWith("refused_")).reduce((a, [, v]) => a + v, 0);
    const tiles = x.systems.filter((s) => f[s.column] !== undefined).map((s) =>
      tile(`${s.label} (${s.name})`, num(f[s.column], s.kind === "peer-rating" ? 2 : 0),
        s.cut !== null && f[s.column] < s.cut));
    if (f.points !== undefined) tiles.push(tile("municipal points", num(f.points)));
    tiles.push(tile("income", "¥" + num(f.income, 0)));
    if (Object.keys(f).some((k) => k.startsWith("refused_"))) tiles.push(tile("requests refused", num(refused), refused > 0));
    const profileFacts = [
      el("li", {}, p.region_name && !p.region_name.startsWith("region") ? "" : "region ", el("b", {}, p.region_name || p.region)),
      el("li", {}, el("b", {}, p.urban ? "urban" : "rural"), " resident"),
      p.hukou_urban !== undefined ? el("li", {}, el("b", {}, p.hukou_urban ? "urban" : "rural"), " hukou") : null,
      el("li", {}, el("b", {}, p.minority ? "minority" : "majority")),
      p.female !== undefined ? el("li", {}, el("b", {}, p.female ? "woman" : "man")) : null,
      p.age !== undefined ? el("li", {}, "age ", el("b", {}, p.age)) : null,
      el("li", {}, "payment platform ", el("b", {}, p.member ? "member" : "non-member")),
      el("li", {}, "initial income ", el("b", {}, "¥" + num(p.income0, 0))), el("li", {}, el("b", {}, p.friends), " friends")];
    const bySystem = {};
    x.scores.forEach((s) => (bySystem[s.system] = bySystem[s.system] || []).push(s));
    view.replaceChildren(
      el("section", {class: "card", id: "profile"},
        el("div", {class: "person"}, SC.avatar(run, x.citizen, 64), el("div", {},
          el("h3", {}, `Citizen #${x.citizen}`,
            f.listed ? el("span", {class: "badge red"}, "on the court list") : null,
            f.listed_ever && !f.listed ? el("span", {class: "badge"}, "was listed") : null,
            innocentHits ? el("span", {class: "badge red"}, `${innocentHits} penalties for others' acts`) : null),
          el("ul", {class: "facts"}, profileFacts))),
        el("div", {class: "tiles"}, tiles),
        x.notes.length ? el("div", {class: "notice"}, x.notes.join(" ")) : null),
      el("section", {class: "card", id: "timeline"}, el("h3", {}, "Timeline"),
        el("p", {class: "caption"}, "Each score of this citizen day by day, with municipal points (top); every event " +
          "involving this citizen by kind (bottom): hollow = not observed, filled = observed, red cross = misattributed, " +
          "red square = a request refused. Shaded: on the court list."),
        el("div", {id: "timeline-plot"})),
      el("section", {class: "card", id: "decomposition", style: "margin-top:18px"},
        el("h3", {}, "Score decomposition"),
        el("p", {class: "caption"}, "Points each dimension contributed on each scoring day: score = low + Σ points − offset, " +
          "clipped to the score's range; below each table, what moved since the previous scoring day and why."),
        Object.keys(bySystem).length ? Object.entries(bySystem).map(([name, recs]) => decomposition(name, recs))
          : el("p", {class: "empty"}, "No scoring system with a decomposition in this run.")),
      el("div", {class: "grid reasons-grid", style: "margin-top:18px"},
        el("section", {class: "card", id: "reasons"}, el("h3", {}, "Why the scores are not higher"),
          el("p", {class: "caption"}, "Principal reasons for each score at its last scoring day, largest first, at most " +
            "four (adverse-action style)."),
          x.reasons.length ? SC.table([{label: "score", key: "system", text: true}, {label: "dimension", key: "dimension", text: true},
            {label: "points lost", key: "points_lost", format: (v) => num(v, 1)}, {label: "reason", key: "reason", text: true, wrap: true}],
          x.reasons)
            : el("p", {class: "empty"}, "No scoring day in this run.")),
        el("section", {class: "card", id: "counterfactual"}, el("h3", {}, "Counterfactual: no misattribution"),
          el("p", {class: "caption"}, cf ? `The same world without misattribution: cameras blame the real actor ` +
            `instead of this citizen (${cf.misattributed_penalties_received} misattributed penalties received).`
            : "Not computed."),
          cf ? SC.table([{label: "", key: "k", text: true}, {label: "as it happened", key: "a"},
            {label: "without", key: "b"}, {label: "change", key: "d", flag: (r) => r.changed}],
          Object.keys(cf.factual).filter((k) => !k.startsWith("refused_") || cf.factual[k] || cf.without_misattribution[k])
            .map((k) => ({k: label(k), a: cf.factual[k],
            b: cf.without_misattribution[k], d: cf.difference[k], changed: cf.difference[k] !== 0 && cf.difference[k] !== null})))
            : null)),
      el("section", {class: "card", id: "sanctions", style: "margin-top:18px"}, el("h3", {}, "Sanctions and the rules behind them"),
        x.sanctions.length ? SC.table([{label: "day", key: "day"}, {label: "sanction", key: "sanction", text: true,
          flag: (r) => r.misattributed},
        {label: "rule (scenario key)", value: (r) => el("code", {}, r.rule), text: true, wrap: true},
        {label: "formula", value: (r) => el("code", {}, r.formula || ""), text: true, wrap: true}], x.sanctions)
          : el("p", {class: "empty"}, "No sanctions."),
        x.rewards && x.rewards.length ? el("details", {}, el("summary", {}, `rewards (${x.rewards.length})`),
          SC.table([{label: "day", key: "day"}, {label: "reward", key: "sanction", text: true},
            {label: "rule (scenario key)", value: (r) => el("code", {}, r.rule), text: true}], x.rewards)) : null),
      el("section", {class: "card", id: "events", style: "margin-top:18px"}, el("h3", {}, `Events (${x.events.length})`),
        el("details", {}, el("summary", {}, "every true event this citizen did or was blamed for, and every request"),
          SC.table([{label: "day", key: "day"}, {label: "kind", key: "kind", text: true},
            {label: "what the system saw", key: "role", text: true, flag: (r) => r.misattributed || r.denied}], x.events))));
    drawTimeline(x);
  }

  function decomposition(name, recs) {
    const dims = recs[0].dimensions.map((d) => d);
    const rows = dims.map((d, i) => Object.assign({dimension: d.dimension, label: d.label, weight: d.weight},
      Object.fromEntries(recs.map((r) => [`d${r.day}`, r.dimensions[i].points]))));
    rows.push(Object.assign({dimension: "offset", label: `raw offset ${recs[0].raw_offset}`},
      Object.fromEntries(recs.map((r) => [`d${r.day}`, -r.offset_points]))));
    rows.push(Object.assign({dimension: "score", label: `${recs[0].low}–${recs[0].high}`, total: true},
      Object.fromEntries(recs.map((r) => [`d${r.day}`, r.after]))));
    const moved = recs.flatMap((r) => r.moved.map((m) => el("li", {}, el("b", {}, `day ${r.day}: `),
      `${m.dimension} ${m.points_change > 0 ? "+" : ""}${num(m.points_change, 1)} points — ${m.why}`)));
    return el("div", {class: "decomp", "data-system": name},
      el("h4", {}, `${recs[0].label} (${name})`),
      SC.table([{label: "dimension", key: "dimension", text: true}, {label: "what it measures", key: "label", text: true},
        {label: "weight", key: "weight", format: (v) => v === undefined ? "" : num(v, 2)},
        ...recs.map((r) => ({label: `day ${r.day}`, key: `d${r.day}`, format: (v) => num(v, 1),
          flag: (row) => row.total && r.clipped}))], rows, (r) => r.total ? "total" : null),
      moved.length ? el("ul", {class: "moved"}, moved) : null);
  }

  function tile(name, value, bad) {
    return el("div", {class: "tile" + (bad ? " bad" : "")}, el("div", {class: "value"}, value), el("div", {class: "label"}, name));
  }

  function drawTimeline(x) {
    const traces = [];
    const ser = x.series || {};
    const days = ser.day || [];
    const palette = [C.blue, C.teal, C.purple, C.red];
    const scoreSystems = x.systems.filter((s) => s.kind !== "peer-rating" && (ser[s.column] || ser[s.name]));
    scoreSystems.forEach((s, i) => traces.push({x: days, y: ser[s.column] || ser[s.name], name: `${s.name} score`,
      mode: "lines", line: {color: palette[i % palette.length], width: 2.2, shape: "hv"}, xaxis: "x", yaxis: "y"}));
    const rating = x.systems.find((s) => s.kind === "peer-rating" && ser[s.name]);
    if (ser.points) {
      traces.push({x: days, y: ser.points, name: "municipal points", mode: "lines",
        line: {color: C.amber, width: 2, dash: "dot", shape: "hv"}, xaxis: "x", yaxis: "y3"});
    }
    if (rating) {
      traces.push({x: days, y: ser[rating.name], name: `${rating.name} (stars)`, mode: "lines",
        line: {color: C.purple, width: 2}, xaxis: "x", yaxis: "y4"});
    }
    const kinds = [...new Set(x.events.map((e) => e.kind))];
    const groups = [["observed", (e) => e.observed && !e.misattributed && !e.denied, C.teal, "circle"],
      ["refused", (e) => e.denied, C.red, "square"],
      ["misattributed", (e) => e.misattributed, C.red, "x"],
      ["not observed", (e) => !e.observed && !e.denied, C.grey, "circle-open"]];
    for (const [name, test, colour, symbol] of groups) {
      const evs = x.events.filter(test);
      if (!evs.length) continue;
      traces.push({x: evs.map((e) => e.day), y: evs.map((e) => label(e.kind)), name: `${name} event`,
        mode: "markers", marker: {color: colour, symbol, size: 8, line: {width: 1.5, color: colour}},
        text: evs.map((e) => e.role), hovertemplate: "day %{x}: %{y}<br>%{text}<extra></extra>", xaxis: "x", yaxis: "y2"});
    }
    const total = ctx.info.days;
    const shapes = x.listings.map((l) => ({type: "rect", xref: "x", yref: "paper", x0: l.start_day,
      x1: l.end_day === null ? total : l.end_day, y0: 0, y1: 1, fillcolor: SC.rgba(C.red, 0.08), line: {width: 0},
      layer: "below"}));
    const rows = Math.max(kinds.length, 1);
    const top = rating ? [0.62, 1] : [0.5, 1];
    const lay = SC.layout({hovermode: "closest", shapes,
      xaxis: SC.axis({title: {text: "day"}, range: [-3, total + 3], anchor: "y2"}),
      yaxis: SC.axis({domain: top, title: {text: "score"}}),
      yaxis3: SC.axis({overlaying: "y", side: "right", showgrid: false, title: {text: "points"}, tickformat: "d",
        range: pointsRange(ser.points)}),
      yaxis2: SC.axis({domain: [0, rating ? 0.36 : 0.4], type: "category", categoryorder: "array",
        categoryarray: kinds.map(label), automargin: true}),
    }, 64);
    if (rating) lay.yaxis4 = SC.axis({domain: [0.42, 0.56], title: {text: "stars"}, range: [1, 5]});
    SC.plot("timeline-plot", traces, lay, 340 + 22 * rows + (rating ? 90 : 0));
  }

  function pointsRange(points) {
    if (!points || !points.length) return undefined;
    const lo = Math.min(...points), hi = Math.max(...points), pad = Math.max(20, (hi - lo) * 0.1);
    return [lo - pad, hi + pad];
  }

  const initial = SC.params.get("citizen");
  await loadList("penalised");
  if (initial !== null && /^\d+$/.test(initial)) show(Number(initial));
})();
