/* Lists and bans: court-list size over time, entries and exits, refusals by service, by province and group. */
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
    [["", "urban and rural"], ["true", "urban residents"], ["false", "rural residents"]].map(([v, t]) => el("option", {value: v, selected: f.urban === v}, t)));
  const stats = el("ul", {class: "facts", id: "list-stats"});
  const title = el("h1", {}, "The court list and bans by service");
  const regionLabel = el("label", {}, "province", region);
  document.getElementById("header").replaceChildren(
    el("p", {class: "eyebrow"}, "Lists and bans"), title,
    el("p", {class: "lede"}, "Who is on the court list of dishonest persons, when they entered and left, and every " +
      "service that refuses citizens by a rule — bans (refused when the rule holds) and perks withheld (served " +
      "only when it holds) — for all citizens or one province and group."),
    el("div", {class: "controls"}, regionLabel, el("label", {}, "group", minority),
      el("label", {}, "residence", urban)), stats);
  const content = document.getElementById("content");

  function update(change) {
    Object.assign(f, change);
    const url = new URL(location.href);
    for (const [k, v] of Object.entries(f)) { if (v === "") url.searchParams.delete(k); else url.searchParams.set(k, v); }
    history.replaceState(null, "", url);
    load();
  }

  function card(id, wide, heading, caption, ...body) {
    return el("section", {class: "card" + (wide ? " wide" : ""), id}, el("h3", {}, heading),
      el("p", {class: "caption"}, caption), ...body);
  }

  async function load() {
    SC.loading(content);
    const q = new URLSearchParams(Object.entries(f).filter(([, v]) => v !== "")).toString();
    let d;
    try { d = await SC.api(`/runs/${R}/lists${q ? "?" + q : ""}`); } catch (e) { SC.error(content, e); return; }
    const word = d.region_word || "region";
    regionLabel.firstChild.textContent = word;
    if (region.options.length === 1) {
      region.options[0].textContent = `all ${word}s`;
      d.regions.forEach((r) => region.append(el("option", {value: String(r), selected: String(r) === f.region},
        d.region_names[String(r)] || `region ${r}`)));
    }
    const court = d.court_list !== null;
    title.textContent = court ? "The court list and bans by service" : "Bans by service";
    const filtered = f.region !== "" || f.minority !== "" || f.urban !== "";
    const g = d.group;
    const bans = d.bans.services;
    const refusedSel = bans.reduce((a, s) => a + s.refused_total, 0);
    stats.replaceChildren(
      el("li", {}, el("b", {}, num(d.group_citizens)), filtered ? ` of ${num(d.citizens)} citizens selected` : " citizens"),
      court ? el("li", {}, el("b", {}, num(g.listed_at_end)), " listed at the end") : null,
      court ? el("li", {}, el("b", {}, num(g.listed_ever)), " ever listed") : null,
      court ? el("li", {}, el("b", {}, d.group_citizens ? num(g.listed_at_end / d.group_citizens * 1000, 1) : "n/a"),
        " per 1,000 at the end") : null,
      bans.length ? el("li", {}, el("b", {}, num(refusedSel)), ` requests refused to the ${num(d.bans.panel_citizens)} ` +
        "panel citizens selected") : null);
    const sections = [];
    if (court) {
      sections.push(el("h2", {class: "section-title"}, "The court list"),
        el("div", {class: "grid"},
          card("card-listed", true, "On the court list each day", filtered
            ? "Selected citizens (left axis) and everyone (right axis, daily.listed_now)."
            : `Everyone (daily.listed_now, equal to the intervals of lists.parquet; ${d.court_list}).`,
          el("div", {id: "plot-listed"})),
          card("card-flows", false, "Entries and exits", "Listings each day and removals: debt repaid or term ended" +
            (g.listed_at_start ? ` (${num(g.listed_at_start)} were on the list when the run started).` : "."),
            el("div", {id: "plot-flows"})),
          card("card-regions", false, `Listed per 1,000 citizens by ${word}`,
            `At the end of the run (bars) and ever (dots), within the selected group.`, el("div", {id: "plot-regions"}))));
    }
    if (bans.length) {
      sections.push(el("h2", {class: "section-title"}, "Bans and refusals by service"),
        el("div", {class: "grid"},
          card("card-bans", true, "Refused by service", "Requests refused to the selected panel citizens over the run: " +
            "bans in red, perks withheld in amber (events are recorded for the panel).", el("div", {id: "plot-bans"})),
          card("card-bans-time", true, "Refusals per week, by service", "The same refusals, week by week, stacked by service.",
            el("div", {id: "plot-bans-time"})),
          card("card-services", true, "Every service and the rule behind it",
            "Totals over the whole run are for everyone (daily.parquet); the selection counts the panel's events.",
            SC.table([{label: "service", key: "label", text: true}, {label: "agency", key: "agency", text: true},
              {label: "kind", value: (r) => r.ban ? "ban" : "perk", text: true, format: (v) => v},
              {label: "rule", value: (r) => el("code", {}, r.rule), text: true},
              {label: "formula", value: (r) => el("code", {}, r.formula), text: true, wrap: true},
              {label: "requests, all", key: "all_requests"}, {label: "refused, all", key: "all_refused"},
              {label: "refused, selection", key: "refused_total"}], bans))));
    }
    sections.push(el("h2", {class: "section-title"}, `By ${word} and group`),
      el("div", {class: "grid"},
        court ? null : card("card-regions", true, `Citizens refused a service per 1,000, by ${word}`,
          "Panel citizens refused at least once, within the selected group.", el("div", {id: "plot-regions"})),
        card("card-groups", true, "By group", "Court list over all citizens of the selection; refusals over its panel citizens.",
          SC.table([{label: "grouping", key: "grouping", text: true}, {label: "group", key: "group", text: true},
            {label: "citizens", key: "citizens"},
            ...(court ? [{label: "listed at the end", key: "listed_now"}, {label: "ever listed", key: "listed_ever"},
              {label: "ever listed per 1,000", value: (r) => r.citizens ? r.listed_ever / r.citizens * 1000 : null,
                format: (v) => v === null ? "n/a" : num(v, 1)}] : []),
            {label: "refused a service per 1,000 (panel)", value: (r) => r.panel ? r.refused_citizens / r.panel * 1000 : null,
              format: (v) => v === null ? "n/a" : num(v, 1)}], d.by_group))));
    content.replaceChildren(...sections);

    const days = d.days;
    if (court) {
      const listed = [{x: days, y: g.listed_now, name: filtered ? "selected" : "listed now", mode: "lines",
        line: {color: C.red, width: 2.5}, fill: "tozeroy", fillcolor: SC.rgba(C.red, 0.08)}];
      const lay = SC.layout({hovermode: "x unified", xaxis: SC.axis({title: {text: "day"}}),
        yaxis: SC.axis({title: {text: "citizens listed"}, rangemode: "tozero"})});
      if (filtered) {
        listed.push({x: days, y: d.all.listed_now, name: "everyone", mode: "lines", yaxis: "y2",
          line: {color: C.grey, width: 1.5, dash: "dot"}});
        lay.yaxis2 = SC.axis({overlaying: "y", side: "right", showgrid: false, rangemode: "tozero", title: {text: "everyone"}});
      }
      SC.plot("plot-listed", listed, lay, 300);
      SC.plot("plot-flows", [
        {x: days, y: g.entries, name: "entries", type: "bar", marker: {color: SC.rgba(C.red, 0.8)}},
        {x: days, y: g.exits_repaid.map((v) => -v), name: "repaid", type: "bar", marker: {color: C.teal}},
        {x: days, y: g.exits_term_ended.map((v) => -v), name: "term ended", type: "bar", marker: {color: C.blue}}],
      SC.layout({barmode: "relative", bargap: 0, hovermode: "x unified", xaxis: SC.axis({title: {text: "day"}}),
        yaxis: SC.axis({title: {text: "per day (exits below 0)"}})}), 340);
    }
    const sel = f.region === "" ? null : Number(f.region);
    const names = d.by_region.map((r) => r.name);
    const tint = (r, colour, a) => sel === null || r.region === sel ? SC.rgba(colour, a) : SC.rgba(C.grey, 0.35);
    const regionAxis = SC.axis({tickangle: -50, tickfont: {size: 10}, automargin: true});
    if (court) {
      SC.plot("plot-regions", [
        {x: names, y: d.by_region.map((r) => r.per_1000), type: "bar", name: "listed at the end",
          marker: {color: d.by_region.map((r) => tint(r, C.red, 0.8))}, hovertemplate: "%{x}: %{y:.1f} per 1,000<extra></extra>"},
        {x: names, y: d.by_region.map((r) => r.ever_per_1000), mode: "markers", name: "ever listed",
          marker: {color: C.ink, size: 6}, hovertemplate: "%{x}: %{y:.1f} ever per 1,000<extra></extra>"}],
      SC.layout({xaxis: regionAxis, yaxis: SC.axis({title: {text: "per 1,000 citizens"}, rangemode: "tozero"})}), 340);
    } else if (bans.length) {
      SC.plot("plot-regions", [
        {x: names, y: d.by_region.map((r) => r.refused_per_1000), type: "bar", name: "refused a service",
          marker: {color: d.by_region.map((r) => tint(r, C.amber, 0.85))}, hovertemplate: "%{x}: %{y:.1f} per 1,000<extra></extra>"}],
      SC.layout({xaxis: regionAxis, yaxis: SC.axis({title: {text: "per 1,000 panel citizens"}, rangemode: "tozero"})}), 340);
    }
    if (bans.length) {
      const colour = (s) => s.ban ? SC.rgba(C.red, 0.85) : SC.rgba(C.amber, 0.9);
      SC.plot("plot-bans", [{type: "bar", orientation: "h", y: bans.map((s) => s.short), x: bans.map((s) => s.refused_total),
        marker: {color: bans.map(colour)}, text: bans.map((s) => num(s.refused_total)), textposition: "outside",
        cliponaxis: false, customdata: bans.map((s) => `${s.rule} = ${s.formula}`),
        hovertemplate: "%{y}: %{x:,} refused<br>%{customdata}<extra></extra>"}],
      SC.layout({showlegend: false, bargap: 0.25, xaxis: SC.axis({title: {text: "refused (selection, panel)"}, rangemode: "tozero"}),
        yaxis: SC.axis({autorange: "reversed"})}, 20), 90 + 28 * bans.length);
      const used = bans.filter((s) => s.refused_total > 0);
      const weeks = [];
      for (let w = 0; w < days.length; w += 7) weeks.push(w);
      const palette = [C.blue, C.red, C.teal, C.amber, C.purple, "#4c9be8", "#8c564b", "#e377c2", "#6b8e23", "#17becf",
        "#b8860b", "#5b5f97", C.grey];
      SC.plot("plot-bans-time", used.map((s, i) => ({type: "bar", name: s.short, x: weeks,
        y: weeks.map((w) => s.refused.slice(w, w + 7).reduce((a, v) => a + v, 0)), marker: {color: palette[i % palette.length]},
        hovertemplate: "week from day %{x}: %{y}<extra>" + s.short + "</extra>"})),
      SC.layout({barmode: "stack", bargap: 0.1, hovermode: "x unified", xaxis: SC.axis({title: {text: "week (first day)"}}),
        yaxis: SC.axis({title: {text: "refused per week"}, rangemode: "tozero"})}, 70), 340);
    }
  }
  load();
})();
