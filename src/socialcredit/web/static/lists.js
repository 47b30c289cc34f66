/* Lists and bans: court-list size over time, entries and exits, denied trips and loans, by province and group. */
"use strict";

(async () => {
  const {el, num, C} = SC;
  let ctx;
  try { ctx = await SC.init(); } catch (e) { SC.error("header", e); return; }
  const R = encodeURIComponent(ctx.run);
  const f = {region: SC.params.get("region") ?? "", minority: SC.params.get("minority") ?? "",
    urban: SC.params.get("urban") ?? ""};

  const region = el("select", {id: "filter-region", onchange: (e) => update({region: e.target.value})},
    el("option", {value: ""}, "all provinces"));
  const minority = el("select", {id: "filter-minority", onchange: (e) => update({minority: e.target.value})},
    [["", "everyone"], ["true", "minority"], ["false", "majority"]].map(([v, t]) => el("option", {value: v, selected: f.minority === v}, t)));
  const urban = el("select", {id: "filter-urban", onchange: (e) => update({urban: e.target.value})},
    [["", "urban and rural"], ["true", "urban hukou"], ["false", "rural hukou"]].map(([v, t]) => el("option", {value: v, selected: f.urban === v}, t)));
  const stats = el("ul", {class: "facts", id: "list-stats"});
  document.getElementById("header").replaceChildren(
    el("p", {class: "eyebrow"}, "Lists and bans"),
    el("h1", {}, "The court list of dishonest persons"),
    el("p", {class: "lede"}, "Who is on the list, when they entered and left, and the travel and loan bans that " +
      "follow — for all citizens or one province (region) and group."),
    el("div", {class: "controls"}, el("label", {}, "province", region), el("label", {}, "group", minority),
      el("label", {}, "hukou", urban)), stats);
  const content = document.getElementById("content");

  function update(change) {
    Object.assign(f, change);
    const url = new URL(location.href);
    for (const [k, v] of Object.entries(f)) { if (v === "") url.searchParams.delete(k); else url.searchParams.set(k, v); }
    history.replaceState(null, "", url);
    load();
  }

  async function load() {
    SC.loading(content);
    const q = new URLSearchParams(Object.entries(f).filter(([, v]) => v !== "")).toString();
    let d;
    try { d = await SC.api(`/runs/${R}/lists${q ? "?" + q : ""}`); } catch (e) { SC.error(content, e); return; }
    if (region.options.length === 1) {
      d.regions.forEach((r) => region.append(el("option", {value: String(r), selected: String(r) === f.region}, `region ${r}`)));
    }
    const filtered = f.region !== "" || f.minority !== "" || f.urban !== "";
    const g = d.group;
    stats.replaceChildren(
      el("li", {}, el("b", {}, num(d.group_citizens)), filtered ? ` of ${num(d.citizens)} citizens selected` : " citizens"),
      el("li", {}, el("b", {}, num(g.listed_at_end)), " listed at the end"),
      el("li", {}, el("b", {}, num(g.listed_ever)), " ever listed"),
      el("li", {}, el("b", {}, d.group_citizens ? num(g.listed_at_end / d.group_citizens * 1000, 1) : "n/a"), " per 1,000 at the end"));
    content.replaceChildren(
      el("h2", {class: "section-title"}, "List size"),
      el("div", {class: "grid"},
        el("section", {class: "card wide", id: "card-listed"}, el("h3", {}, "On the court list each day"),
          el("p", {class: "caption"}, filtered ? "Selected citizens (left axis) and everyone (right axis, daily.listed_now)."
            : "Everyone (daily.listed_now, equal to the intervals of lists.parquet)."), el("div", {id: "plot-listed"})),
        el("section", {class: "card", id: "card-flows"}, el("h3", {}, "Entries and exits"),
          el("p", {class: "caption"}, "Listings each day and removals: debt repaid or term ended."), el("div", {id: "plot-flows"})),
        el("section", {class: "card", id: "card-bans"}, el("h3", {}, "Bans: trips and loans denied"),
          el("p", {class: "caption"}, `Denied each day to the selected panel citizens (${num(d.bans.panel_citizens)}; ` +
            "events are recorded for the panel)."), el("div", {id: "plot-bans"}))),
      el("h2", {class: "section-title"}, "By province and group"),
      el("div", {class: "grid"},
        el("section", {class: "card wide", id: "card-regions"}, el("h3", {}, "Listed per 1,000 citizens by province"),
          el("p", {class: "caption"}, "At the end of the run (bars) and ever (dots), within the selected group."),
          el("div", {id: "plot-regions"})),
        el("section", {class: "card wide", id: "card-groups"}, el("h3", {}, "By group"),
          SC.table([{label: "grouping", key: "grouping", text: true}, {label: "group", key: "group", text: true},
            {label: "citizens", key: "citizens"}, {label: "listed at the end", key: "listed_now"},
            {label: "ever listed", key: "listed_ever"},
            {label: "ever listed per 1,000", value: (r) => r.citizens ? r.listed_ever / r.citizens * 1000 : null,
              format: (v) => v === null ? "n/a" : num(v, 1)}], d.by_group))));

    const days = d.days;
    const listed = [{x: days, y: g.listed_now, name: filtered ? "selected" : "listed now", mode: "lines",
      line: {color: C.red, width: 2.5}, fill: "tozeroy", fillcolor: SC.rgba(C.red, 0.08)}];
    const lay = SC.layout({hovermode: "x unified", xaxis: SC.axis({title: {text: "day"}}),
      yaxis: SC.axis({title: {text: "citizens listed"}, rangemode: "tozero"})});
    if (filtered) {
      listed.push({x: days, y: d.all.listed_now, name: "everyone", mode: "lines", yaxis: "y2",
        line: {color: C.grey, width: 1.5, dash: "dot"}});
      lay.yaxis2 = SC.axis({overlaying: "y", side: "right", showgrid: false, rangemode: "tozero", title: {text: "everyone"}});
    }
    SC.plot("plot-listed", listed, lay, 320);
    SC.plot("plot-flows", [
      {x: days, y: g.entries, name: "entries", type: "bar", marker: {color: SC.rgba(C.red, 0.8)}},
      {x: days, y: g.exits_repaid.map((v) => -v), name: "repaid", type: "bar", marker: {color: C.teal}},
      {x: days, y: g.exits_term_ended.map((v) => -v), name: "term ended", type: "bar", marker: {color: C.blue}}],
    SC.layout({barmode: "relative", bargap: 0, hovermode: "x unified", xaxis: SC.axis({title: {text: "day"}}),
      yaxis: SC.axis({title: {text: "per day (exits below 0)"}})}), 320);
    SC.plot("plot-bans", [
      {x: days, y: d.bans.trips_denied, name: "trips denied", type: "bar", marker: {color: SC.rgba(C.amber, 0.85)}},
      {x: days, y: d.bans.loans_denied, name: "loans denied", type: "bar", marker: {color: SC.rgba(C.purple, 0.75)}}],
    SC.layout({barmode: "stack", bargap: 0, hovermode: "x unified", xaxis: SC.axis({title: {text: "day"}}),
      yaxis: SC.axis({title: {text: "denied per day"}, rangemode: "tozero"})}), 320);
    const sel = f.region === "" ? null : Number(f.region);
    SC.plot("plot-regions", [
      {x: d.by_region.map((r) => r.region), y: d.by_region.map((r) => r.per_1000), type: "bar", name: "listed at the end",
        marker: {color: d.by_region.map((r) => sel === null || r.region === sel ? SC.rgba(C.red, 0.8) : SC.rgba(C.grey, 0.35))},
        hovertemplate: "region %{x}: %{y:.1f} per 1,000<extra></extra>"},
      {x: d.by_region.map((r) => r.region), y: d.by_region.map((r) => r.ever_per_1000), mode: "markers", name: "ever listed",
        marker: {color: C.ink, size: 7}, hovertemplate: "region %{x}: %{y:.1f} ever per 1,000<extra></extra>"}],
    SC.layout({xaxis: SC.axis({title: {text: "province (region)"}, dtick: 1}),
      yaxis: SC.axis({title: {text: "per 1,000 citizens"}, rangemode: "tozero"})}), 320);
  }
  load();
})();
