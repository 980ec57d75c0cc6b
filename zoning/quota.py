"""Quota mode: one zone per county so that every provincial or national quota holds, as close as possible to the
model's own answer — a small integer program solved with HiGHS (``highspy``).

Minimised: Σ_i |score_i(unconstrained zone) − score_i(assigned zone)|, then, among equal totals, the number of
moves (a weight per move far below any score difference), ties broken by county order. Quotas are shares of land, of counties
or of residents per zone, within all counties, each province (the first two digits of the code) or the values
of a field. Optional: locked counties, no county alone of its zone among its neighbours, a cap on moves.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import DataError
from .model import ZONES  # the order of the score columns
from .quota_file import (  # noqa: F401 - one API
    GAP,
    MEASURES,
    PROVINCES,
    TOL,
    Constraint,
    Quota,
    group_keys,
    load_quota,
)

MOVE_WEIGHT = 1e-6  # below any real score difference (scores are given to 1e-3)


@dataclass
class Solution:
    zone: np.ndarray  # the assigned zone of each county
    cost: np.ndarray  # its score difference
    achieved: list = field(default_factory=list)  # per constraint: {group: share}
    status: str = ""
    seconds: float = 0.0
    binding: list = field(default_factory=list)  # per county: the constraint that moved it ("" if none)


def adjacency(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j), i ≠ j, of counties sharing a border of positive length (corners do not count)."""
    import shapely

    i, j = shapely.STRtree(geoms).query(geoms)  # extents that meet
    keep = i < j
    i, j = i[keep], j[keep]
    # DE-9IM: boundaries meeting along a line, or interiors overlapping (slivers of unclean borders); one relate
    # per pair, not an intersection built (5× faster on national county outlines)
    m = np.asarray(shapely.relate(geoms[i], geoms[j]), dtype="U9").view("U1").reshape(-1, 9)
    keep = (m[:, 4] == "1") | (m[:, 0] == "2")
    i, j = i[keep], j[keep]
    return np.concatenate([i, j]), np.concatenate([j, i])


class Problem:
    """The integer program: x[i, k] = 1 when county i gets zone k (column i·3 + k)."""

    def __init__(self, costs: np.ndarray, base: np.ndarray, quota: Quota, weights: dict, groups: list,
                 locked: np.ndarray, neighbours: tuple[np.ndarray, np.ndarray] | None):
        self.n = len(base)
        self.costs, self.base, self.quota, self.weights, self.groups = costs, base, quota, weights, groups
        self.locked, self.neighbours = locked, neighbours

    def isolated(self, zone: np.ndarray) -> np.ndarray:
        """Counties with neighbours none of which shares their zone (the rule's violations in ``zone``)."""
        a, b = self.neighbours
        same = np.zeros(self.n, dtype=int)
        np.add.at(same, a, zone[a] == zone[b])
        return np.nonzero(np.isin(np.arange(self.n), a) & (same == 0))[0]

    def _rows(self, which: list[int]) -> tuple[list, list, list, list, list]:
        """COO entries and bounds: assignment, the constraints ``which``, isolation, the cap on moves."""
        n, r, c, v, lo, hi = self.n, [], [], [], [], []
        row = 0
        ii = np.arange(n)
        r.append(np.repeat(ii, 3))
        c.append(np.arange(3 * n))
        v.append(np.ones(3 * n))
        lo += [1.0] * n
        hi += [1.0] * n
        row = n
        for ci in which:
            con = self.quota.constraints[ci]
            w, k = self.weights[con.measure], ZONES.index(con.zone)
            for g in pd.unique(self.groups[ci]):
                members = np.nonzero(self.groups[ci] == g)[0]
                total = float(w[members].sum())
                r.append(np.full(len(members), row))
                c.append(members * 3 + k)
                v.append(w[members])
                lo.append(con.min * total - TOL * total if con.min is not None else -np.inf)
                hi.append(con.max * total + TOL * total if con.max is not None else np.inf)
                row += 1
        if self.neighbours is not None and not self.quota.isolated:
            # every county's rule as rows: adding them lazily, where a solution broke the rule, took five solves
            # each harder than the whole program (347 s nationally against 29 s)
            a, b = self.neighbours
            has = np.unique(a)
            for k in range(3):  # x[i,k] ≤ Σ_{j ∈ N(i)} x[j,k]
                rows = row + np.searchsorted(has, a)
                r += [rows, row + np.arange(len(has))]
                c += [b * 3 + k, has * 3 + k]
                v += [np.ones(len(a)), -np.ones(len(has))]
                lo += [0.0] * len(has)
                hi += [np.inf] * len(has)
                row += len(has)
        if self.quota.max_moves is not None:
            r.append(np.full(n, row))
            c.append(ii * 3 + self.base)
            v.append(np.ones(n))
            lo.append(float(n - self.quota.max_moves))
            hi.append(np.inf)
        return r, c, v, lo, hi

    def solve(self, objective: np.ndarray, which: list[int], sense: int = 1):
        """Minimise (``sense`` 1) or maximise (−1) ``objective`` over x; returns (status, x or None, value)."""
        import highspy

        r, c, v, lo, hi = self._rows(which)
        rows, cols, vals = np.concatenate(r), np.concatenate(c), np.concatenate(v)
        order = np.lexsort((rows, cols))
        rows, cols, vals = rows[order], cols[order], vals[order]
        ncol = 3 * self.n
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = ncol, len(lo)
        lp.col_cost_ = np.asarray(objective, dtype=float) * sense
        col_lo, col_hi = np.zeros(ncol), np.ones(ncol)
        fixed = np.nonzero(self.locked >= 0)[0]
        col_hi.reshape(self.n, 3)[fixed] = 0.0
        col_lo[3 * fixed + self.locked[fixed]] = col_hi[3 * fixed + self.locked[fixed]] = 1.0
        lp.col_lower_, lp.col_upper_ = col_lo, col_hi
        lp.row_lower_, lp.row_upper_ = np.array(lo), np.array(hi)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.searchsorted(cols, np.arange(ncol + 1)).astype(np.int32)
        lp.a_matrix_.index_ = rows.astype(np.int32)
        lp.a_matrix_.value_ = vals
        lp.integrality_ = [highspy.HighsVarType.kInteger] * ncol
        h = highs()
        h.setOptionValue("threads", 1)  # the same answer on every machine
        h.setOptionValue("mip_rel_gap", self.quota.gap)
        h.passModel(lp)
        h.run()
        status = h.modelStatusToString(h.getModelStatus())
        if status != "Optimal":
            return status, None, None
        x = np.round(np.asarray(h.getSolution().col_value)).reshape(self.n, 3)
        return status, x, float(np.asarray(objective) @ x.ravel())


def solve(costs: np.ndarray, base: np.ndarray, quota: Quota, weights: dict, groups: list, locked: np.ndarray,
          neighbours=None) -> Solution:
    """The assignment of least total cost meeting every constraint, then the fewest moves among those.

    Raises :class:`DataError` naming the constraint, or the pair, that cannot hold, with the best share each can
    reach given the locks (from relaxations solved here)."""
    t0 = time.perf_counter()
    p = Problem(costs, base, quota, weights, groups, locked, neighbours)
    n = len(base)
    cost = np.asarray(costs, dtype=float).ravel()
    allc = list(range(len(quota.constraints)))
    moved = np.ones((n, 3))
    moved[np.arange(n), base] = 0.0
    # the total first; a move weighs MOVE_WEIGHT, so among equal totals the fewest moves win, and a far smaller
    # weight by county order settles what remains
    order = (np.arange(n) + 1.0) / (n + 1.0)
    objective = cost + MOVE_WEIGHT * (moved * (1.0 + 1e-3 * order[:, None])).ravel()
    status, x, _ = p.solve(objective, allc)
    if x is None:
        raise DataError(f"quota {quota.source}: the quotas cannot all hold ({status}). " + diagnose(p), [])
    zone = revert(p, x.argmax(axis=1), weights, groups)
    sol = Solution(zone, np.asarray(costs)[np.arange(n), zone], status=status, seconds=time.perf_counter() - t0)
    sol.achieved = [achieved(c, x, weights, groups[i]) for i, c in enumerate(quota.constraints)]
    sol.binding = binding(quota, sol, base, groups, weights)
    return sol


def revert(p: Problem, zone: np.ndarray, weights: dict, groups: list) -> np.ndarray:
    """Send back, in county order, every moved county whose return breaks nothing: within the solver's gap a
    move may remain that the quotas do not need (its return lowers the total and the moves)."""
    zone = zone.copy()
    cons = p.quota.constraints
    for i in np.nonzero(zone != p.base)[0]:
        if p.locked[i] >= 0:
            continue
        trial = zone.copy()
        trial[i] = p.base[i]
        x = np.zeros((p.n, 3))
        x[np.arange(p.n), trial] = 1.0
        ok = all(all((c.min is None or s >= c.min - TOL) and (c.max is None or s <= c.max + TOL)
                     for s in achieved(c, x, weights, groups[k]).values()) for k, c in enumerate(cons))
        if ok and p.neighbours is not None and not p.quota.isolated:
            ok = not len(p.isolated(trial))
        if ok:
            zone = trial
    return zone


def achieved(c: Constraint, x: np.ndarray, weights: dict, groups: np.ndarray) -> dict:
    """The share each group of a constraint reaches in the assignment ``x`` (n × 3)."""
    w, k = weights[c.measure], ZONES.index(c.zone)
    return {str(g): float((w * x[:, k])[groups == g].sum() / max(w[groups == g].sum(), 1e-300))
            for g in pd.unique(groups)}


def binding(quota: Quota, sol: Solution, base: np.ndarray, groups: list, weights: dict) -> list:
    """For each moved county, the constraint it would break by going back to its own zone alone (its group named);
    else the isolation rule or the quotas together."""
    out = []
    n = len(base)
    x = np.zeros((n, 3))
    x[np.arange(n), sol.zone] = 1.0
    for i, (b, z) in enumerate(zip(base, sol.zone)):
        if b == z:
            out.append("")
            continue
        back = x.copy()
        back[i] = 0.0
        back[i, b] = 1.0
        why = ""
        for ci, c in enumerate(quota.constraints):
            g = groups[ci][i]
            share = achieved(c, back, weights, groups[ci])[str(g)]
            if (c.min is not None and share < c.min - TOL) or (c.max is not None and share > c.max + TOL):
                why = c.label() + ("" if g == "all" else f" ({g})")
                break
        out.append(why or ("no county alone of its zone among its neighbours" if not quota.isolated else
                           "the quotas together"))
    return out


def highs():
    """A HiGHS instance, silent: its banner would otherwise go to the terminal's standard output."""
    import os
    import sys

    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            h = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    h.setOptionValue("output_flag", False)
    return h


def solver_version() -> str:
    import highspy

    return f"HiGHS {highs().version()} (highspy)" if hasattr(highspy.Highs, "version") else "HiGHS (highspy)"


def diagnose(p: Problem) -> str:
    """Which constraint, or pair, cannot hold, and the best share each reaches with the locks given."""
    cons = p.quota.constraints
    zero = np.zeros(3 * p.n)

    def best(ci: int, also: list[int]) -> str:
        c = cons[ci]
        w, k = p.weights[c.measure], ZONES.index(c.zone)
        parts = []
        for g in pd.unique(p.groups[ci]):
            members = p.groups[ci] == g
            obj = np.zeros((p.n, 3))
            obj[members, k] = w[members] / max(w[members].sum(), 1e-300)
            hi = p.solve(obj.ravel(), also, sense=-1)[2] if c.min is not None else None
            lo = p.solve(obj.ravel(), also)[2] if c.max is not None else None
            if c.min is not None and (hi is None or hi < c.min - 1e-6):
                parts.append(f"{'' if g == 'all' else f'{g}: '}at most {'none' if hi is None else f'{hi:.1%}'}")
            elif c.max is not None and (lo is None or lo > c.max + 1e-6):
                parts.append(f"{'' if g == 'all' else f'{g}: '}at least {'none' if lo is None else f'{lo:.1%}'}")
        return "; ".join(parts)

    if p.solve(zero, [])[1] is None:
        rules = (["the isolation rule"] if not p.quota.isolated else []) + \
            ([f"max_moves = {p.quota.max_moves}"] if p.quota.max_moves is not None else [])
        return f"{' and '.join(rules) or 'the locks'} cannot hold with the locks given, before any quota."
    for ci, c in enumerate(cons):
        if p.solve(zero, [ci])[1] is None:
            return f"{c.label()} cannot hold with the locks given: best reachable {best(ci, [])}."
    for a in range(len(cons)):
        for b in range(a + 1, len(cons)):
            if p.solve(zero, [a, b])[1] is None:
                return (f"{cons[a].label()} and {cons[b].label()} cannot hold together: with the second, the first "
                        f"reaches {best(a, [b]) or 'its bound only partly'}; with the first, the second reaches "
                        f"{best(b, [a]) or 'its bound only partly'}.")
    extra = []
    if not p.quota.isolated:
        extra.append("the isolation rule")
    if p.quota.max_moves is not None:
        extra.append(f"max_moves = {p.quota.max_moves}")
    return "each constraint and each pair can hold; together " + (" and ".join(extra) or "they") + " cannot."
