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
    el("p", {class: "lede"}, "Pick a citizen to see the timeline of true and observed events, the score decomposition " +
      "with reason codes, every sanction and the rule behind it, and the counterfactual: the same world with no " +
      "camera misattribution. The run is replayed for each citizen (a few seconds the first time)."),
    SC.facts(ctx.info), form);

  const side = el("aside", {class: "card", id: "picks"});
  const view = el("div", {id: "explain"});
  document.getElementById("content").replaceChildren(el("div", {class: "layout-side"}, side, view));
  view.append(el("div", {class: "card"}, el("p", {class: "empty"}, "Search for an id or choose a citizen from a list.")));

  const LISTS = [["penalised", "Most penalised"], ["misattributed", "Misattributed"], ["listed", "Listed"]];
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
              ? `${c.misattributed} of ${c.penalties} penalties for others' acts · grade ${c.grade}`
              : `grade ${c.grade} · ${num(c.points)} points · score ${num(c.score, 0)}` +
                (kind === "listed" ? ` · since day ${c.listed_since}` : "")))))));
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

  function render(x) {
    const p = x.profile, f = x.final, cf = x.counterfactual;
    const innocentHits = x.events.filter((e) => e.misattributed && e.attributed_to === x.citizen).length;
    view.replaceChildren(
      el("section", {class: "card", id: "profile"},
        el("div", {class: "person"}, SC.avatar(run, x.citizen, 64), el("div", {},
          el("h3", {}, `Citizen #${x.citizen}`,
            f.listed ? el("span", {class: "badge red"}, "on the court list") : null,
            f.listed_ever && !f.listed ? el("span", {class: "badge"}, "was listed") : null,
            innocentHits ? el("span", {class: "badge red"}, `${innocentHits} penalties for others' acts`) : null),
          el("ul", {class: "facts"},
            el("li", {}, "region ", el("b", {}, p.region)), el("li", {}, el("b", {}, p.urban ? "urban" : "rural"), " hukou"),
            el("li", {}, el("b", {}, p.minority ? "minority" : "majority")),
            el("li", {}, "platform ", el("b", {}, p.member ? "member" : "non-member")),
            el("li", {}, "initial income ", el("b", {}, "¥" + num(p.income0, 0))), el("li", {}, el("b", {}, p.friends), " friends")))),
        el("div", {class: "tiles"},
          tile("platform score", num(f.score, 0)), tile("municipal points", num(f.points)),
          tile("income", "¥" + num(f.income, 0)), tile("trips denied", num(f.trips_denied), f.trips_denied > 0),
          tile("loans denied", num(f.loans_denied), f.loans_denied > 0)),
        x.notes.length ? el("div", {class: "notice"}, x.notes.join(" ")) : null),
      el("section", {class: "card", id: "timeline"}, el("h3", {}, "Timeline"),
        el("p", {class: "caption"}, "Platform score and municipal points on each scoring day (top); every event " +
          "involving this citizen by kind (bottom): hollow = not observed, filled = observed, red = misattributed. " +
          "Shaded: on the court list."),
        el("div", {id: "timeline-plot"})),
      el("div", {class: "grid", style: "margin-top:18px"},
        el("section", {class: "card", id: "reasons"}, el("h3", {}, "Why the score is not higher"),
          el("p", {class: "caption"}, "Principal reasons at the last scoring day, largest first (adverse-action style)."),
          x.reasons.length ? SC.table([{label: "dimension", key: "dimension", text: true},
            {label: "points lost", key: "points_lost"}, {label: "reason", key: "reason", text: true}], x.reasons)
            : el("p", {class: "empty"}, "No scoring day in this run.")),
        el("section", {class: "card", id: "counterfactual"}, el("h3", {}, "Counterfactual: no misattribution"),
          el("p", {class: "caption"}, cf ? `The same world, but cameras blame the real actor instead of this ` +
            `citizen (${cf.misattributed_penalties_received} misattributed penalties received).` : "Not computed."),
          cf ? SC.table([{label: "", key: "k", text: true}, {label: "as it happened", key: "a"},
            {label: "without misattribution", key: "b"}, {label: "difference", key: "d", flag: (r) => r.changed}],
          Object.keys(cf.factual).map((k) => ({k: k.replaceAll("_", " "), a: cf.factual[k],
            b: cf.without_misattribution[k], d: cf.difference[k], changed: cf.difference[k] !== 0 && cf.difference[k] !== null})))
            : null)),
      el("section", {class: "card", id: "sanctions", style: "margin-top:18px"}, el("h3", {}, "Sanctions and the rules behind them"),
        x.sanctions.length ? SC.table([{label: "day", key: "day"}, {label: "sanction", key: "sanction", text: true},
          {label: "rule (scenario key)", value: (r) => el("code", {}, r.rule), text: true}], x.sanctions)
          : el("p", {class: "empty"}, "No sanctions.")),
      el("section", {class: "card", id: "events", style: "margin-top:18px"}, el("h3", {}, `Events (${x.events.length})`),
        el("details", {}, el("summary", {}, "every true event this citizen did or was blamed for"),
          SC.table([{label: "day", key: "day"}, {label: "kind", key: "kind", text: true},
            {label: "what the system saw", key: "role", text: true, flag: (r) => r.misattributed}], x.events))));
    drawTimeline(x);
  }

  function tile(label, value, bad) {
    return el("div", {class: "tile" + (bad ? " bad" : "")}, el("div", {class: "value"}, value), el("div", {class: "label"}, label));
  }

  function drawTimeline(x) {
    const traces = [];
    const scores = x.scores.filter((s) => s.system === "platform" || true);
    traces.push({x: scores.map((s) => s.day), y: scores.map((s) => s.after), name: "platform score", mode: "lines+markers",
      line: {color: C.blue, width: 2.5}, marker: {size: 5}, xaxis: "x", yaxis: "y"});
    if (x.monthly.length) {
      traces.push({x: x.monthly.map((m) => m.day), y: x.monthly.map((m) => m.points), name: "municipal points",
        mode: "lines+markers", line: {color: C.amber, width: 2, dash: "dot"}, marker: {size: 4}, xaxis: "x", yaxis: "y3"});
    }
    const kinds = [...new Set(x.events.map((e) => e.kind))];
    const groups = [["observed", (e) => e.observed && !e.misattributed, C.teal, "circle"],
      ["misattributed", (e) => e.misattributed, C.red, "x"], ["not observed", (e) => !e.observed, C.grey, "circle-open"]];
    for (const [name, test, colour, symbol] of groups) {
      const evs = x.events.filter(test);
      if (!evs.length) continue;
      traces.push({x: evs.map((e) => e.day), y: evs.map((e) => e.kind.replaceAll("_", " ")), name: `${name} event`,
        mode: "markers", marker: {color: colour, symbol, size: 8, line: {width: 1.5, color: colour}},
        text: evs.map((e) => e.role), hovertemplate: "day %{x}: %{y}<br>%{text}<extra></extra>", xaxis: "x", yaxis: "y2"});
    }
    const days = ctx.info.days;
    const shapes = x.listings.map((l) => ({type: "rect", xref: "x", yref: "paper", x0: l.start_day,
      x1: l.end_day === null ? days : l.end_day, y0: 0, y1: 1, fillcolor: SC.rgba(C.red, 0.08), line: {width: 0},
      layer: "below"}));
    const rows = Math.max(kinds.length, 1);
    const lay = SC.layout({hovermode: "closest", shapes,
      xaxis: SC.axis({title: {text: "day"}, range: [-3, days + 3], anchor: "y2"}),
      yaxis: SC.axis({domain: [0.48, 1], title: {text: "platform score"}}),
      yaxis3: SC.axis({overlaying: "y", side: "right", showgrid: false, title: {text: "points"}, tickformat: "d",
        range: pointsRange(x.monthly)}),
      yaxis2: SC.axis({domain: [0, 0.38], type: "category", categoryorder: "array",
        categoryarray: kinds.map((k) => k.replaceAll("_", " ")), automargin: true}),
    }, 44);
    SC.plot("timeline-plot", traces, lay, 300 + 22 * rows);
  }

  function pointsRange(monthly) {
    if (!monthly.length) return undefined;
    const pts = monthly.map((m) => m.points);
    const lo = Math.min(...pts), hi = Math.max(...pts), pad = Math.max(20, (hi - lo) * 0.1);
    return [lo - pad, hi + pad];
  }

  const initial = SC.params.get("citizen");
  await loadList("penalised");
  if (initial !== null && /^\d+$/.test(initial)) show(Number(initial));
})();
