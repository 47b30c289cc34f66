/* Public shame board: the jaywalker screen as a city would run it, with innocents (misattributed) marked. */
"use strict";

(async () => {
  const {el, num, pct} = SC;
  let ctx;
  try { ctx = await SC.init(); } catch (e) { SC.error("header", e); return; }
  const run = ctx.run;
  const R = encodeURIComponent(run);
  const PAGE = 48;
  let offset = Math.max(0, Number(SC.params.get("offset")) || 0);
  let innocentOnly = SC.params.get("innocent_only") === "true";

  const toggle = el("input", {type: "checkbox", id: "innocent-only", checked: innocentOnly, onchange: (e) => {
    innocentOnly = e.target.checked; offset = 0; load();
  }});
  const stats = el("ul", {class: "facts", id: "board-stats"});
  document.getElementById("header").replaceChildren(
    el("p", {class: "eyebrow"}, "Public shame board"),
    el("h1", {id: "board-title"}, "Offenders exposed by cameras"),
    el("p", {class: "lede"}, "Cities display jaywalkers and fare dodgers caught by face-matching cameras on public " +
      "screens. This is that board for the simulated city: every observed act it shows, newest first, under the " +
      "citizen the camera blamed. When the match was wrong, an innocent is on the screen; those are marked here — " +
      "the city's board would not mark them. Synthetic ids and generated identicons only: never faces."),
    stats,
    el("div", {class: "controls"}, el("label", {class: "check"}, toggle, "show only innocents (misattributed)")));
  const board = el("div", {class: "board", id: "board"});
  document.getElementById("content").replaceChildren(board);

  async function load() {
    SC.loading(board, "Loading the board…");
    let d;
    try {
      d = await SC.api(`/runs/${R}/shame?offset=${offset}&limit=${PAGE}&innocent_only=${innocentOnly}`);
    } catch (e) { SC.error(board, e); return; }
    const kinds = (d.kinds || ["jaywalk"]).map((k) => k.replaceAll("_", " "));
    document.getElementById("board-title").textContent = `Offenders exposed by cameras: ${kinds.join(", ")}`;
    stats.replaceChildren(
      el("li", {}, el("b", {}, num(d.total)), ` acts on the board (${kinds.join(", ")})`),
      el("li", {}, el("b", {class: "flag"}, num(d.innocent)), " of them innocents"),
      el("li", {}, "innocent share ", el("b", {}, pct(d.innocent_share))),
      d.panel_citizens && d.panel_citizens < d.citizens
        ? el("li", {}, `events of the ${num(d.panel_citizens)} panel citizens only`) : "");
    const last = Math.min(d.offset + d.entries.length, d.matching);
    board.replaceChildren(
      el("div", {class: "board-head"},
        el("div", {class: "board-title"}, "曝光台 · Traffic offenders"),
        el("div", {class: "board-sub"}, `${run} · showing ${num(d.matching ? d.offset + 1 : 0)}–${num(last)} of ` +
          `${num(d.matching)}${innocentOnly ? " innocents" : ""}`)),
      d.entries.length ? el("div", {class: "ticker"}, d.entries.map((e) =>
        el("div", {class: "offender" + (e.misattributed ? " innocent" : ""), "data-citizen": e.citizen},
          e.misattributed ? el("div", {class: "stamp"}, "INNOCENT") : null,
          SC.avatar(run, e.citizen, 72),
          el("div", {class: "id"}, `#${e.citizen}`),
          el("div", {class: "meta"}, `day ${e.day} · ${e.region_name ?? "region " + (e.region ?? "?")}`),
          el("div", {class: "meta"}, `${(e.kind || "jaywalk").replaceAll("_", " ")}` +
            (e.points !== undefined && e.points !== null ? ` · ${e.points} pts${e.grade ? ", " + e.grade : ""}` : "")),
          e.misattributed ? el("div", {class: "truth"}, "act of citizen ",
            el("a", {href: `/citizens?run=${R}&citizen=${e.actor}`, style: "color:#ffd166"}, `#${e.actor}`)) : null,
          el("a", {href: `/citizens?run=${R}&citizen=${e.citizen}`, class: "meta", style: "color:#8fb8e8"}, "explain →"))))
        : el("p", {class: "board-sub"}, "Nobody on the board."),
      el("div", {class: "pager"},
        el("button", {class: "ghost", id: "newer", disabled: d.offset === 0,
          onclick: () => { offset = Math.max(0, offset - PAGE); load(); }}, "← newer"),
        el("button", {class: "ghost", id: "older", disabled: last >= d.matching,
          onclick: () => { offset += PAGE; load(); }}, "older →")));
  }
  load();
})();
