"""Independent reference implementation ("oracle") of SPEC section 9, model `ref`.

Plain, eager numpy; whole-population vectorised per day.  It deliberately
shares no code with ``socialcredit`` so that tests can compare the two
statistically.  Every step follows SPEC 9.2 in order:

    behaviour -> observation -> records -> consequences -> scoring ((t+1) % 30 == 0)

Interpretation decisions where the spec is terse (fixed by the test brief):

* b for non-members is 0.5 - 0.5*min(1, c/2) (the critical-post penalty
  applies to members and non-members alike); members use
  1 - 0.5*min(1, g/5) - 0.5*min(1, c/2).  g, c count observed events since
  the previous scoring (this day included) and reset after each scoring.
* "Ever penalised for a critical post" = at least one observed critical post
  at any time up to and including the current day.
* A day's missed payment is one Bernoulli event.  Stress uses true missed
  payments; ``miss`` uses observed ones (members only).
* M changes of a day (jaywalk -10 to the *attributed* citizen, traffic -20,
  critical post -30, volunteering +20, newly listed today -450) are summed and
  clipped once to [0, 1200].
* Listed on day t0 => listed on days t0..t0+729; the term-end removal happens
  at the start of processing on day t0+730, so such a citizen is not "listed
  at the start of the day" and may be judged that day.
* Records order: judgments (not listed at start of day, stress >= 1.5), then
  random removals (listed at start of day), then new listings.
* Consequences see today's listings; a denied trip cuts income by 5 %
  immediately.  Loans use P from before today's scoring.
* Misattribution goes to a uniformly random *other* citizen of the same
  region; in a one-citizen region it stays with the actor and is not counted
  as misattributed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

# --- SPEC 9.1 constants -------------------------------------------------------
N_REGIONS = 31  # "region | uniform on 0..30"
P_URBAN = 0.65
P_MINORITY = 0.09
P_MEMBER = 0.85
GRAPH_DRAWS = 5  # "each citizen i makes 5 draws"
P_SAME_REGION = 0.8

# --- SPEC 9.2 constants -------------------------------------------------------
STRESS_DECAY = math.exp(-1.0 / 60.0)
MISS_DECAY = math.exp(-1.0 / 180.0)
STRESS_THRESHOLD = 1.5
LIST_TERM = 730
M_MIN, M_MAX = 0.0, 1200.0
SCORING_PERIOD = 30

METRIC_NAMES = (
    "p_mean",
    "p_sd",
    "p_share_below_550",
    "p_share_ge_650",
    "p_share_ge_700",
    "m_mean",
    "grade_share_AAAplus",
    "grade_share_AA",
    "grade_share_A",
    "grade_share_B",
    "grade_share_C",
    "grade_share_D",
    "listed_now_share",
    "listed_ever_share",
    "judgments_per_1000",
    "denied_trips_per_1000",
    "loans_denied_per_1000",
    "misattributed_per_1000",
    "shame_board_innocent_share",
    "unfriended_edge_share",
    "posts_first_30",
    "posts_last_30",
    "chilling_reduction",
    "di_listed_ever_minority",
    "di_p_below_600_minority",
    "di_m_below_960_urban",
    "income_loss_listed_ever",
    "citizen_days_per_s",
)


# ============================================================================
# Population (SPEC 9.1)
# ============================================================================
@dataclass
class Citizens:
    """Fixed attributes drawn at t = 0."""

    n: int
    region: np.ndarray  # int64, 0..30
    urban: np.ndarray  # bool
    minority: np.ndarray  # bool
    income0: np.ndarray  # float64
    risk: np.ndarray  # float64
    voice: np.ndarray  # float64
    member: np.ndarray  # bool
    # region lookup: citizens sorted by region, start offset and size per region,
    # and each citizen's position inside its region's block.
    region_order: np.ndarray
    region_start: np.ndarray
    region_size: np.ndarray
    region_pos: np.ndarray


def draw_citizens(n: int, rng: np.random.Generator) -> Citizens:
    """SPEC 9.1 table, one column at a time."""
    region = rng.integers(0, N_REGIONS, size=n)  # uniform on 0..30
    urban = rng.random(n) < P_URBAN  # Bernoulli(0.65)
    minority = rng.random(n) < P_MINORITY  # Bernoulli(0.09)
    # income = exp(Normal(10.2 + 0.5*urban - 0.2*minority, 0.7))
    income0 = np.exp(rng.normal(10.2 + 0.5 * urban - 0.2 * minority, 0.7))
    risk = rng.beta(2.0, 5.0, size=n)  # Beta(2, 5)
    voice = rng.beta(1.0, 9.0, size=n)  # Beta(1, 9)
    member = rng.random(n) < P_MEMBER  # Bernoulli(0.85)

    order = np.argsort(region, kind="stable")
    size = np.bincount(region, minlength=N_REGIONS)
    start = np.cumsum(size) - size
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n) - start[region[order]]
    return Citizens(
        n=n,
        region=region,
        urban=urban,
        minority=minority,
        income0=income0,
        risk=risk,
        voice=voice,
        member=member,
        region_order=order,
        region_start=start,
        region_size=size,
        region_pos=pos,
    )


def other_in_region(
    c: Citizens, who: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Uniformly random *other* citizen of each ``who``'s region.

    Requires every region of ``who`` to have at least two citizens.
    """
    reg = c.region[who]
    k = rng.integers(0, c.region_size[reg] - 1)  # uniform on 0..n_r-2
    k = k + (k >= c.region_pos[who])  # skip the citizen itself
    return c.region_order[c.region_start[reg] + k]


def other_in_population(
    n: int, who: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Uniformly random other citizen of the whole population."""
    k = rng.integers(0, n - 1, size=who.size)
    return k + (k >= who)


# ============================================================================
# Graph (SPEC 9.1)
# ============================================================================
def build_graph(c: Citizens, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """'each citizen i makes 5 draws; each draw picks, with probability 0.8, a
    uniformly random other citizen of i's region, else a uniformly random other
    citizen of the whole population. Edges are undirected; self-loops and
    duplicates are dropped.'

    A region draw by the only citizen of its region falls back to the whole
    population.  Returns unique (u, v) pairs with u < v.
    """
    n = c.n
    src = np.repeat(np.arange(n), GRAPH_DRAWS)
    local = rng.random(src.size) < P_SAME_REGION
    local &= c.region_size[c.region[src]] > 1
    dst = np.empty_like(src)
    dst[local] = other_in_region(c, src[local], rng)
    dst[~local] = other_in_population(n, src[~local], rng)
    u = np.minimum(src, dst)
    v = np.maximum(src, dst)
    keep = u != v
    key = np.unique(u[keep].astype(np.int64) * n + v[keep])
    return key // n, key % n


def neighbour_sum_and_degree(
    edge_u: np.ndarray, edge_v: np.ndarray, active: np.ndarray, x: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sum of x over active neighbours, and number of active neighbours."""
    u, v = edge_u[active], edge_v[active]
    deg = np.bincount(u, minlength=n) + np.bincount(v, minlength=n)
    xf = x.astype(np.float64)
    s = np.bincount(u, weights=xf[v], minlength=n) + np.bincount(
        v, weights=xf[u], minlength=n
    )
    return s, deg


# ============================================================================
# State
# ============================================================================
@dataclass
class State:
    income: np.ndarray
    P: np.ndarray
    M: np.ndarray
    stress: np.ndarray
    miss: np.ndarray
    listed: np.ndarray
    listed_day: np.ndarray
    listed_ever: np.ndarray
    chill: np.ndarray
    gaming_count: np.ndarray  # observed gaming days since last scoring
    crit_count: np.ndarray  # observed critical posts since last scoring
    ever_penalised: np.ndarray  # ever had an observed critical post
    edge_active: np.ndarray
    # run totals
    judgments: int = 0
    denied_trips: int = 0
    loans_denied: int = 0
    detected_jaywalks: int = 0
    misattributed: int = 0
    posts_first_30: int = 0
    posts_last_30: int = 0


def initial_state(c: Citizens, n_edges: int) -> State:
    """'P = 600, M = 1000, stress = 0, listed = false, chill = 0'."""
    n = c.n
    return State(
        income=c.income0.copy(),
        P=np.full(n, 600.0),
        M=np.full(n, 1000.0),
        stress=np.zeros(n),
        miss=np.zeros(n),
        listed=np.zeros(n, dtype=bool),
        listed_day=np.full(n, -1, dtype=np.int64),
        listed_ever=np.zeros(n, dtype=bool),
        chill=np.zeros(n),
        gaming_count=np.zeros(n, dtype=np.int64),
        crit_count=np.zeros(n, dtype=np.int64),
        ever_penalised=np.zeros(n, dtype=bool),
        edge_active=np.ones(n_edges, dtype=bool),
    )


@dataclass
class Events:
    jaywalk: np.ndarray
    traffic: np.ndarray
    missed: np.ndarray
    critical: np.ndarray
    volunteer: np.ndarray
    gaming: np.ndarray


@dataclass
class Observed:
    jaywalk_penalties: np.ndarray  # count of -10 penalties per attributed citizen
    traffic: np.ndarray
    missed: np.ndarray
    critical: np.ndarray
    volunteer: np.ndarray
    gaming: np.ndarray
    n_detected: int
    n_misattributed: int


def risk_factors(c: Citizens, st: State) -> tuple[np.ndarray, np.ndarray]:
    """'a = 0.5 + risk, s = min(3, sqrt(30000 / income)), with the current income'."""
    a = 0.5 + c.risk
    s = np.minimum(3.0, np.sqrt(30000.0 / st.income))
    return a, s


# ============================================================================
# Step 0 (term end): 'listed on day t0 means listed on days t0..t0+729'
# ============================================================================
def expire_terms(st: State, t: int) -> None:
    ended = st.listed & (t >= st.listed_day + LIST_TERM)
    st.listed[ended] = False


# ============================================================================
# Step 1: Behaviour
# ============================================================================
def behaviour(
    c: Citizens, st: State, a: np.ndarray, s: np.ndarray, rng: np.random.Generator
) -> Events:
    u = rng.random((6, c.n))
    return Events(
        # jaywalk: 0.004·a if urban else 0.002·a
        jaywalk=u[0] < np.where(c.urban, 0.004, 0.002) * a,
        # traffic violation: 0.001·a
        traffic=u[1] < 0.001 * a,
        # missed payment: 0.002·a·s
        missed=u[2] < 0.002 * a * s,
        # critical post: 0.02·voice·(1 − chill)
        critical=u[3] < 0.02 * c.voice * (1.0 - st.chill),
        # volunteering: 0.003·(1.5 − risk)
        volunteer=u[4] < 0.003 * (1.5 - c.risk),
        # gaming day: 0.04·risk
        gaming=u[5] < 0.04 * c.risk,
    )


# ============================================================================
# Step 2: Observation
# ============================================================================
def observation(c: Citizens, events: Events, rng: np.random.Generator) -> Observed:
    n = c.n
    u = rng.random((5, n))
    # jaywalk: detected with probability 0.7 if urban else 0.1
    detected = events.jaywalk & (u[0] < np.where(c.urban, 0.7, 0.1))
    # with probability 0.01 misattributed to a uniformly random other citizen
    # of the same region (in a region of one citizen, it stays with the actor)
    mis = detected & (u[1] < 0.01) & (c.region_size[c.region] > 1)
    attributed = np.flatnonzero(detected & ~mis)
    mis_actors = np.flatnonzero(mis)
    victims = other_in_region(c, mis_actors, rng) if mis_actors.size else mis_actors
    penalties = np.bincount(np.concatenate([attributed, victims]), minlength=n)
    return Observed(
        jaywalk_penalties=penalties,
        traffic=events.traffic & (u[2] < 0.5),  # detected with probability 0.5
        missed=events.missed & c.member,  # observed iff member
        critical=events.critical & (u[3] < 0.3),  # observed with probability 0.3
        volunteer=events.volunteer & (u[4] < 0.8),  # observed with probability 0.8
        gaming=events.gaming & c.member,  # observed iff member
        n_detected=int(detected.sum()),
        n_misattributed=int(mis_actors.size),
    )


# ============================================================================
# Step 3: Records
# ============================================================================
def records(
    c: Citizens,
    st: State,
    events: Events,
    ob: Observed,
    a: np.ndarray,
    s: np.ndarray,
    t: int,
    rng: np.random.Generator,
) -> None:
    n = c.n
    u = rng.random((2, n))
    listed_at_start = st.listed.copy()

    # stress = stress·exp(−1/60) + (1 if a true missed payment today)
    st.stress = st.stress * STRESS_DECAY + events.missed
    # judgments (for citizens not listed at the start of the day)
    judged = ~listed_at_start & (st.stress >= STRESS_THRESHOLD)
    # with probability q = min(0.95, 0.6·a·s) the citizen defaults and is listed
    q = np.minimum(0.95, 0.6 * a * s)
    defaults = judged & (u[0] < q)
    st.judgments += int(judged.sum())
    # either way stress resets to 0
    st.stress[judged] = 0.0

    # removals: listed citizen repays with daily prob 0.001·min(1, income/30000)
    p_repay = 0.001 * np.minimum(1.0, st.income / 30000.0)
    removed = listed_at_start & (u[1] < p_repay)
    st.listed[removed] = False

    # new listings (term 730 days); "Listed ever" is kept
    st.listed[defaults] = True
    st.listed_day[defaults] = t
    st.listed_ever |= defaults

    # M: jaywalk −10 (attributed), traffic −20, critical post −30,
    # volunteering +20, entry on the court list −450; summed, clipped once
    delta = (
        -10.0 * ob.jaywalk_penalties
        - 20.0 * ob.traffic
        - 30.0 * ob.critical
        + 20.0 * ob.volunteer
        - 450.0 * defaults
    )
    st.M = np.clip(st.M + delta, M_MIN, M_MAX)

    # miss = miss·exp(−1/180) + observed count
    st.miss = st.miss * MISS_DECAY + ob.missed

    # counters since previous scoring and the "ever penalised" flag
    st.gaming_count += ob.gaming
    st.crit_count += ob.critical
    st.ever_penalised |= ob.critical


# ============================================================================
# Step 4: Consequences
# ============================================================================
def consequences(c: Citizens, st: State, rng: np.random.Generator) -> None:
    u = rng.random((2, c.n))
    # trip with daily prob 0.004 urban / 0.002 rural; denied if listed
    trip = u[0] < np.where(c.urban, 0.004, 0.002)
    denied = trip & st.listed
    st.income[denied] *= 0.95
    st.denied_trips += int(denied.sum())
    # loan with daily prob 0.002; approved iff P ≥ 600 and not listed
    loan = u[1] < 0.002
    st.loans_denied += int((loan & ((st.P < 600.0) | st.listed)).sum())


# ============================================================================
# Step 5: Scoring
# ============================================================================
def score_formula(h, b, f, c, r):
    """raw = 0.35h + 0.25b + 0.20f + 0.15c + 0.05r;
    P = 350 + 600·clip((raw − 0.45) / 0.7, 0, 1)."""
    raw = 0.35 * h + 0.25 * b + 0.20 * f + 0.15 * c + 0.05 * r
    return 350.0 + 600.0 * np.clip((raw - 0.45) / 0.7, 0.0, 1.0)


def score_components(
    member: np.ndarray,
    miss: np.ndarray,
    gaming_count: np.ndarray,
    crit_count: np.ndarray,
    income: np.ndarray,
    listed: np.ndarray,
    M: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """h, b, f, c of SPEC 9.2 step 5 (r needs the graph)."""
    # h = exp(−miss) for members, 0.6 for non-members
    h = np.where(member, np.exp(-miss), 0.6)
    crit_pen = 0.5 * np.minimum(1.0, crit_count / 2.0)
    # b = 1 − 0.5·min(1, g/5) − 0.5·min(1, c/2) for members;
    # non-members: 0.5 − 0.5·min(1, c/2) (critical-post penalty applies to all)
    b = np.where(
        member,
        1.0 - 0.5 * np.minimum(1.0, gaming_count / 5.0) - crit_pen,
        0.5 - crit_pen,
    )
    # f = clip((ln income − 9.5) / 2.5, 0, 1)
    f = np.clip((np.log(income) - 9.5) / 2.5, 0.0, 1.0)
    # c = 0 if listed, else 0.7 if M < 960, else 1
    cc = np.where(listed, 0.0, np.where(M < 960.0, 0.7, 1.0))
    return h, b, f, cc


def scoring(
    c: Citizens,
    st: State,
    edge_u: np.ndarray,
    edge_v: np.ndarray,
    rng: np.random.Generator,
) -> None:
    n = c.n
    h, b, f, cc = score_components(
        c.member, st.miss, st.gaming_count, st.crit_count, st.income, st.listed, st.M
    )
    # r = mean over active neighbours (before unfriending) of (P_j − 350)/600, 0 if none
    s, deg = neighbour_sum_and_degree(
        edge_u, edge_v, st.edge_active, (st.P - 350.0) / 600.0, n
    )
    r = np.divide(s, deg, out=np.zeros(n), where=deg > 0)
    st.P = score_formula(h, b, f, cc, r)  # simultaneous: r used the old P

    # each active edge with at least one endpoint listed now is deactivated w.p. 0.1
    draw = rng.random(edge_u.size) < 0.1
    st.edge_active &= ~((st.listed[edge_u] | st.listed[edge_v]) & draw)

    # chill = 0.5 if ever penalised, else 0.5 × share of active neighbours
    # ever penalised (after unfriending), or 0 with no active neighbours
    s, deg = neighbour_sum_and_degree(
        edge_u, edge_v, st.edge_active, st.ever_penalised, n
    )
    share = np.divide(s, deg, out=np.zeros(n), where=deg > 0)
    st.chill = np.where(st.ever_penalised, 0.5, 0.5 * share)

    # counts are "since the previous scoring"
    st.gaming_count[:] = 0
    st.crit_count[:] = 0


# ============================================================================
# Metrics (SPEC 9.4)
# ============================================================================
def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else float(num / den)


def _share(mask: np.ndarray, within: np.ndarray) -> float | None:
    k = int(within.sum())
    return None if k == 0 else float(mask[within].sum() / k)


def _rate_ratio(mask: np.ndarray, group: np.ndarray) -> float | None:
    """share of mask within group / share of mask within ~group."""
    num = _share(mask, group)
    den = _share(mask, ~group)
    if num is None or den is None:
        return None
    return _ratio(num, den)


def metrics(
    c: Citizens, st: State, n_edges: int, days: int, elapsed: float
) -> dict[str, float | None]:
    n = c.n
    P, M = st.P, st.M
    per1000 = 1000.0 / n
    out: dict[str, float | None] = {
        "p_mean": float(P.mean()),
        "p_sd": float(P.std(ddof=0)),
        "p_share_below_550": float((P < 550).mean()),
        "p_share_ge_650": float((P >= 650).mean()),
        "p_share_ge_700": float((P >= 700).mean()),
        "m_mean": float(M.mean()),
        # A+++ ≥ 1050; AA 1030–1049; A 960–1029; B 850–959; C 600–849; D < 600
        "grade_share_AAAplus": float((M >= 1050).mean()),
        "grade_share_AA": float(((M >= 1030) & (M < 1050)).mean()),
        "grade_share_A": float(((M >= 960) & (M < 1030)).mean()),
        "grade_share_B": float(((M >= 850) & (M < 960)).mean()),
        "grade_share_C": float(((M >= 600) & (M < 850)).mean()),
        "grade_share_D": float((M < 600).mean()),
        "listed_now_share": float(st.listed.mean()),
        "listed_ever_share": float(st.listed_ever.mean()),
        "judgments_per_1000": st.judgments * per1000,
        "denied_trips_per_1000": st.denied_trips * per1000,
        "loans_denied_per_1000": st.loans_denied * per1000,
        "misattributed_per_1000": st.misattributed * per1000,
        "shame_board_innocent_share": _ratio(st.misattributed, st.detected_jaywalks),
        "unfriended_edge_share": _ratio(int((~st.edge_active).sum()), n_edges),
        "posts_first_30": st.posts_first_30 * per1000,
        "posts_last_30": st.posts_last_30 * per1000,
        "chilling_reduction": None
        if st.posts_first_30 == 0
        else 1.0 - st.posts_last_30 / st.posts_first_30,
        "di_listed_ever_minority": _rate_ratio(st.listed_ever, c.minority),
        "di_p_below_600_minority": _rate_ratio(P < 600, c.minority),
        "di_m_below_960_urban": _rate_ratio(M < 960, c.urban),
        "income_loss_listed_ever": None
        if not st.listed_ever.any()
        else float(
            np.mean(1.0 - st.income[st.listed_ever] / c.income0[st.listed_ever])
        ),
        "citizen_days_per_s": float(n * days / elapsed)
        if elapsed > 0
        else float("inf"),
    }
    return out


# ============================================================================
# Driver
# ============================================================================
def run(citizens: int, days: int, seed: int) -> tuple[Citizens, State, int, float]:
    """Run the model; return (citizens, final state, initial edge count, loop seconds)."""
    if citizens < 2:
        raise ValueError("need at least two citizens")
    rng = np.random.Generator(np.random.PCG64(seed))
    c = draw_citizens(citizens, rng)
    edge_u, edge_v = build_graph(c, rng)
    st = initial_state(c, edge_u.size)

    t0 = time.perf_counter()
    for t in range(days):
        expire_terms(st, t)
        a, s = risk_factors(c, st)  # current income, fixed until consequences
        events = behaviour(c, st, a, s, rng)
        obs = observation(c, events, rng)
        st.detected_jaywalks += obs.n_detected
        st.misattributed += obs.n_misattributed
        n_posts = int(events.critical.sum())  # TRUE critical posts
        if t < 30:
            st.posts_first_30 += n_posts
        if t >= days - 30:
            st.posts_last_30 += n_posts
        records(c, st, events, obs, a, s, t, rng)
        consequences(c, st, rng)
        if (t + 1) % SCORING_PERIOD == 0:
            scoring(c, st, edge_u, edge_v, rng)
    elapsed = time.perf_counter() - t0
    return c, st, edge_u.size, elapsed


def simulate(citizens: int, days: int, seed: int) -> dict[str, float | None]:
    """Every SPEC 9.4 metric of one `ref` run."""
    c, st, n_edges, elapsed = run(citizens, days, seed)
    return metrics(c, st, n_edges, days, elapsed)


if __name__ == "__main__":  # pragma: no cover
    import json
    import sys

    args = [int(x) for x in sys.argv[1:4]] or [20000, 365, 1]
    t_start = time.perf_counter()
    res = simulate(*args)
    print(json.dumps(res, indent=2))
    print(f"wall {time.perf_counter() - t_start:.2f}s", file=sys.stderr)
