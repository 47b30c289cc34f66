"""Event kinds and the day's event buffer.

Each day the behaviour stage writes the day's true events (who did what) into
a buffer laid out block by block; later stages annotate them in place
(observed? attributed to whom? denied? judged?). Work per day is proportional
to the number of events, not of citizens.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from socialcredit import dtypes as dt
from socialcredit.errors import ScenarioError

# Event flag bits.
OBSERVED = np.uint8(1)  # seen by a channel
MISATTRIBUTED = np.uint8(2)  # attributed to someone other than the actor
DENIED = np.uint8(4)  # service request refused
JUDGED = np.uint8(8)  # triggered a court judgment
DEFAULTED = np.uint8(16)  # judgment defaulted: the citizen is listed
REMOVED = np.uint8(32)  # the citizen left the list
RECHECK = np.uint8(64)  # removed with stress high enough to be judged tomorrow

FLAG_NAMES = {
    "observed": OBSERVED,
    "misattributed": MISATTRIBUTED,
    "denied": DENIED,
    "judged": JUDGED,
    "defaulted": DEFAULTED,
    "removed": REMOVED,
}

# Propensity forms: the per-citizen factor multiplying a kind's base rate.
FORMS = {
    "constant": 0,  # 1
    "risk_factor": 1,  # a = offset + risk
    "risk_strain": 2,  # a · s, s = min(cap, sqrt(income_ref / income))
    "voice_unchilled": 3,  # voice · (1 - chill)
    "prosocial": 4,  # offset - risk
    "risk": 5,  # risk
    "listed_repayment": 6,  # [listed before today, term not over] · min(1, income / income_ref)
    "table": 7,  # a formula's rate, evaluated per citizen (row p0 of the simulation's rate table)
}


def stable_stream(prefix: str, name: str) -> int:
    """A stream id that depends only on a decision's name, not on table order."""
    return 1_000 + zlib.crc32(f"{prefix}:{name}".encode()) % 1_000_000_007


@dataclass
class EventKinds:
    """Table of the scenario's event kinds: how often they happen, who sees them."""

    names: list[str] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)
    rate_urban: list[float] = field(default_factory=list)
    rate_rural: list[float] = field(default_factory=list)
    form: list[int] = field(default_factory=list)
    params: list[tuple[float, float, float]] = field(default_factory=list)
    bound: list[float] = field(default_factory=list)
    detect_urban: list[float] = field(default_factory=list)
    detect_rural: list[float] = field(default_factory=list)
    members_only: list[int] = field(default_factory=list)
    false_match: list[float] = field(default_factory=list)
    channel: list[str] = field(default_factory=list)
    match_row: list[int] = field(default_factory=list)  # row of the false-match multiplier table, -1: none

    def add(
        self,
        name: str,
        owner: str,
        rate_urban: float,
        rate_rural: float,
        form: str = "constant",
        params: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> int:
        """Register a kind; return its code. ``owner`` is the key path that defines it."""
        if name in self.names:
            other = self.owners[self.names.index(name)]
            raise ScenarioError(f"{owner}: event kind {name!r} is already defined by {other}")
        if form == "table":  # row of the simulation's rate table
            params = (float(self.form.count(FORMS["table"])), 0.0, 0.0)
        bound = rate_bound(form, params) * max(rate_urban, rate_rural)
        if bound > 1.0:
            raise ScenarioError(
                f"{owner}: daily probability can reach {bound:.3g} (> 1): lower the rates"
            )
        self.names.append(name)
        self.owners.append(owner)
        self.rate_urban.append(rate_urban)
        self.rate_rural.append(rate_rural)
        self.form.append(FORMS[form])
        self.params.append(params)
        self.bound.append(bound)
        for col, val in (
            (self.detect_urban, 0.0),
            (self.detect_rural, 0.0),
            (self.members_only, 0),
            (self.false_match, 0.0),
            (self.channel, ""),
            (self.match_row, -1),
        ):
            col.append(val)
        return len(self.names) - 1

    def code(self, name: str, where: str) -> int:
        """Code of kind ``name``; a clear error naming ``where`` if unknown."""
        if name not in self.names:
            known = ", ".join(self.names) or "none"
            raise ScenarioError(f"{where}: unknown event kind {name!r} (defined: {known})")
        return self.names.index(name)

    def watch(
        self,
        name: str,
        channel: str,
        detect_urban: float,
        detect_rural: float,
        members_only: bool = False,
        false_match: float = 0.0,
        match_row: int = -1,
    ) -> None:
        """Let ``channel`` observe kind ``name``."""
        k = self.code(name, channel)
        if self.channel[k]:
            raise ScenarioError(f"{channel}: event kind {name!r} is already watched by {self.channel[k]}")
        self.channel[k] = channel
        self.detect_urban[k] = detect_urban
        self.detect_rural[k] = detect_rural
        self.members_only[k] = int(members_only)
        self.false_match[k] = false_match
        self.match_row[k] = match_row

    def __len__(self) -> int:
        return len(self.names)

    def table_rows(self) -> int:
        """Rows of the rate table (kinds whose rate is a formula)."""
        return self.form.count(FORMS["table"])

    def arrays(self) -> dict[str, np.ndarray]:
        """The table as typed arrays for the kernels."""
        bound = np.array(self.bound, np.float64)
        with np.errstate(divide="ignore"):
            log1m = np.log1p(-np.minimum(bound, 1.0))
        return {
            "rate_urban": np.array(self.rate_urban, np.float64),
            "rate_rural": np.array(self.rate_rural, np.float64),
            "form": np.array(self.form, np.int64),
            "params": np.array(self.params, np.float64).reshape(len(self), 3),
            "bound": bound,
            "log1m_bound": log1m,
            "beh_stream": np.array([stable_stream("behaviour", n) for n in self.names], np.int64),
            "obs_stream": np.array([stable_stream("observe", n) for n in self.names], np.int64),
            "detect_urban": np.array(self.detect_urban, np.float64),
            "detect_rural": np.array(self.detect_rural, np.float64),
            "members_only": np.array(self.members_only, np.uint8),
            "false_match": np.array(self.false_match, np.float64),
            "match_row": np.array(self.match_row, np.int64),
        }


def rate_bound(form: str, params: tuple[float, float, float]) -> float:
    """Largest value the propensity factor of ``form`` can take (traits in [0, 1])."""
    p0, _, p2 = params
    return {
        "constant": 1.0,
        "risk_factor": p0 + 1.0,
        "risk_strain": (p0 + 1.0) * p2,
        "voice_unchilled": 1.0,
        "prosocial": p0,
        "risk": 1.0,
        "listed_repayment": 1.0,
        "table": 0.0,  # set when the formula is evaluated
    }[form]


@dataclass
class EventBuffer:
    """The day's events, in per-block slots: block ``b`` owns
    ``slot_start[b] .. slot_start[b] + slot_cap[b]`` and uses ``count[b]`` of them."""

    citizen: np.ndarray
    kind: np.ndarray
    flags: np.ndarray
    target: np.ndarray
    slot_start: np.ndarray
    slot_cap: np.ndarray
    count: np.ndarray
    kind_at: np.ndarray  # [B, K+1]: events of kind k in block b are kind_at[b, k] .. kind_at[b, k+1]

    @classmethod
    def allocate(cls, block_sizes: np.ndarray, daily_bound: float, kinds: int) -> EventBuffer:
        """Slots for the expected events plus a wide margin (grown on overflow)."""
        mean = block_sizes * daily_bound
        cap = np.ceil(mean + 8.0 * np.sqrt(mean) + 32).astype(np.int64)
        return cls.with_capacity(cap, kinds)

    @classmethod
    def with_capacity(cls, cap: np.ndarray, kinds: int) -> EventBuffer:
        """A buffer with ``cap[b]`` slots for block ``b``."""
        start = np.concatenate([[0], np.cumsum(cap)]).astype(np.int64)
        total = int(start[-1])
        return cls(
            citizen=np.empty(total, dt.CITIZEN_ID),
            kind=np.empty(total, dt.EVENT_KIND),
            flags=np.zeros(total, dt.EVENT_FLAGS),
            target=np.empty(total, dt.CITIZEN_ID),
            slot_start=start[:-1].copy(),
            slot_cap=cap.astype(np.int64),
            count=np.zeros(len(cap), np.int64),
            kind_at=np.zeros((len(cap), kinds + 1), np.int64),
        )

    def grown(self) -> EventBuffer:
        """A buffer with room for every block's last count, and margin."""
        need = np.maximum(self.slot_cap, self.count)
        return self.with_capacity((need * 3) // 2 + 64, self.kind_at.shape[1] - 1)

    def overflowed(self) -> bool:
        """Whether some block produced more events than it had slots."""
        return bool(np.any(self.count > self.slot_cap))

    def total(self) -> int:
        """Number of events in the buffer."""
        return int(self.count.sum())

