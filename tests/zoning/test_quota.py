"""Quota mode (zoning.quota): the integer program against brute force, locks, the isolation rule, provinces,
infeasibility named from solved relaxations, and the quota file's validation."""
import itertools

import numpy as np
import pytest
import shapely

from zoning import quota as q
from zoning.errors import ConfigError, DataError


@pytest.fixture(autouse=True)
def exact(monkeypatch):
    """Small programs solved to proven optimality, for the comparison with brute force to be exact."""
    from zoning import quota_file

    monkeypatch.setattr(quota_file, "GAP", 0.0)


def _instance(seed: int, n: int):
    rng = np.random.default_rng(seed)
    scores = rng.random((n, 3))
    base = scores.argmax(axis=1)
    costs = np.abs(scores[np.arange(n), base][:, None] - scores)
    w = {"land": rng.random(n) * 100 + 10, "units": np.ones(n), "population": rng.integers(1, 100, n) * 1000.0}
    return costs, base, w


def _shares(a, c, w, groups):
    wm = w[c.measure]
    return [wm[(a == q.ZONES.index(c.zone)) & (groups == g)].sum() / wm[groups == g].sum() for g in set(groups)]


def _brute(costs, base, quota, w, groups, locked=None, adjacent=None):
    n, best = len(base), None
    for a in itertools.product(range(3), repeat=n):
        a = np.array(a)
        if locked is not None and ((locked >= 0) & (a != locked)).any():
            continue
        ok = all(all((c.min is None or s >= c.min - 1e-9) and (c.max is None or s <= c.max + 1e-9)
                     for s in _shares(a, c, w, g)) for c, g in zip(quota.constraints, groups))
        if ok and adjacent is not None:
            ok = all(any(a[j] == a[i] for j in adjacent[i]) for i in adjacent if adjacent[i])
        if not ok:
            continue
        key = (round(costs[np.arange(n), a].sum(), 9), int((a != base).sum()))
        if best is None or key < best[0]:
            best = (key, a)
    return best


QUOTAS = [
    '[[constraint]]\nzone = "ecological"\nmeasure = "land"\nmin = 0.5\n',
    '[[constraint]]\nzone = "urbanization"\nmeasure = "units"\nmax = 0.2\n[[constraint]]\nzone = "grain_production"\n'
    'measure = "population"\nmin = 0.3\n',
    '[[constraint]]\nzone = "ecological"\nmeasure = "units"\nmin = 0.4\nmax = 0.6\ngroup = "province"\n',
]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("text", QUOTAS)
def test_the_optimum_equals_brute_force(seed, text):
    n = 8
    costs, base, w = _instance(seed, n)
    quota = q.load_quota(text)
    ids = np.array(["510101", "510102", "510103", "510104", "520101", "520102", "520103", "520104"])
    import pandas as pd

    groups = [q.group_keys(c, pd.Series(ids), None) for c in quota.constraints]
    want = _brute(costs, base, quota, w, groups)
    sol = q.solve(costs, base, quota, w, groups, np.full(n, -1))
    assert sol.cost.sum() == pytest.approx(want[0][0], abs=1e-7)
    assert int((sol.zone != base).sum()) == want[0][1]  # among equal totals, fewest moves
    for c, g, got in zip(quota.constraints, groups, sol.achieved):
        assert all((c.min is None or s >= c.min - 1e-7) and (c.max is None or s <= c.max + 1e-7) for s in got.values())


def test_no_binding_quota_keeps_the_unconstrained_answer():
    costs, base, w = _instance(7, 10)
    quota = q.load_quota('[[constraint]]\nzone = "ecological"\nmeasure = "land"\nmin = 0.0\n')
    sol = q.solve(costs, base, quota, w, [np.full(10, "all", dtype=object)], np.full(10, -1))
    assert (sol.zone == base).all() and sol.cost.sum() == 0


def test_a_free_move_is_not_made():
    """A county whose other zone scores the same costs 0 to move, but a move it is: fewest moves win."""
    costs, base, w = _instance(3, 6)
    costs[0, (base[0] + 1) % 3] = 0.0
    quota = q.load_quota('[[constraint]]\nzone = "urbanization"\nmeasure = "units"\nmax = 1.0\n')
    sol = q.solve(costs, base, quota, w, [np.full(6, "all", dtype=object)], np.full(6, -1))
    assert (sol.zone == base).all()


def test_locks_are_honoured():
    n = 8
    costs, base, w = _instance(11, n)
    quota = q.load_quota(QUOTAS[0])
    locked = np.full(n, -1)
    locked[:3] = 0  # three counties stay urbanization whatever it costs
    groups = [np.full(n, "all", dtype=object)]
    sol = q.solve(costs, base, quota, w, groups, locked)
    assert (sol.zone[:3] == 0).all()
    assert sol.cost.sum() == pytest.approx(_brute(costs, base, quota, w, groups, locked)[0][0], abs=1e-7)


def test_the_isolation_rule_on_a_hand_drawn_adjacency():
    """A row of five squares; corners do not count as neighbours. Alone of its zone among its neighbours is
    refused when isolated = false."""
    squares = np.array([shapely.box(i, 0, i + 1, 1) for i in range(5)] + [shapely.box(2, 1, 3, 2)])
    a, b = q.adjacency(squares)
    pairs = set(zip(a.tolist(), b.tolist()))
    assert pairs == {(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2), (3, 4), (4, 3), (2, 5), (5, 2)}
    costs = np.array([[0, 1, 1], [1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 1, 1], [1, 1, 0]], dtype=float)
    base = costs.argmin(axis=1)  # urb, grain, urb, eco, urb, eco: every county alone among its neighbours
    w = {"land": np.ones(6), "units": np.ones(6), "population": np.ones(6)}
    quota = q.load_quota('isolated = false\n[[constraint]]\nzone = "urbanization"\nmeasure = "units"\nmax = 1.0\n')
    sol = q.solve(costs, base, quota, w, [np.full(6, "all", dtype=object)], np.full(6, -1), (a, b))
    adjacent = {i: [j for (x, j) in pairs if x == i] for i in range(6)}
    assert all(any(sol.zone[j] == sol.zone[i] for j in adjacent[i]) for i in range(6))
    want = _brute(costs, base, quota, w, [np.full(6, "all", dtype=object)], adjacent=adjacent)
    assert sol.cost.sum() == pytest.approx(want[0][0]) and int((sol.zone != base).sum()) == want[0][1]
    assert "no county alone of its zone" in " ".join(sol.binding)


def test_per_province_groups_are_each_held():
    costs, base, w = _instance(5, 8)
    import pandas as pd

    ids = pd.Series(["510101", "510102", "510103", "510104", "520101", "520102", "520103", "520104"])
    quota = q.load_quota('[[constraint]]\nzone = "ecological"\nmeasure = "units"\nmin = 0.5\ngroup = "province"\n')
    groups = [q.group_keys(quota.constraints[0], ids, None)]
    sol = q.solve(costs, base, quota, w, groups, np.full(8, -1))
    assert set(sol.achieved[0]) == {"四川 Sichuan", "贵州 Guizhou"}
    assert (sol.zone[:4] == 2).sum() >= 2 and (sol.zone[4:] == 2).sum() >= 2


def test_infeasible_quotas_are_named_with_what_each_can_reach():
    costs, base, w = _instance(2, 6)
    groups = [np.full(6, "all", dtype=object)] * 2
    pair = q.load_quota('[[constraint]]\nzone = "ecological"\nmeasure = "units"\nmin = 0.6\n[[constraint]]\n'
                        'zone = "ecological"\nmeasure = "units"\nmax = 0.4\n', "pair.toml")
    with pytest.raises(DataError, match=r"ecological counties ≥ 60% and ecological counties ≤ 40% cannot hold "
                                        r"together: with the second, the first reaches at most 33.3%; with the "
                                        r"first, the second reaches at least 66.7%"):
        q.solve(costs, base, pair, w, groups, np.full(6, -1))
    locked = np.zeros(6, dtype=int)
    locked[5] = -1  # five counties locked to urbanization: at most one of six can be ecological
    alone = q.load_quota('[[constraint]]\nzone = "ecological"\nmeasure = "units"\nmin = 0.5\n', "alone.toml")
    with pytest.raises(DataError, match=r"ecological counties ≥ 50% cannot hold with the locks given: best reachable "
                                        r"at most 16.7%"):
        q.solve(costs, base, alone, w, groups[:1], locked)


def test_a_bad_quota_file_names_every_key():
    text = ('max_moves = -1\nextra = 1\n[[constraint]]\nzone = "forest"\nmeasure = "area"\nmin = 55\n'
            '[[constraint]]\nzone = "ecological"\nmeasure = "land"\n[[constraint]]\nzone = "ecological"\n'
            'measure = "land"\nmin = 0.6\nmax = 0.5\n')
    with pytest.raises(ConfigError) as e:
        q.load_quota(text, "q.toml")
    said = "\n".join(e.value.problems)
    for msg in ("constraint[1].zone: expected one of urbanization", "constraint[1].measure: expected one of land",
                "constraint[1].min: expected a share from 0 to 1 (0.55 for 55 %), got 55",
                "constraint[2]: give min and/or max", "constraint[3]: min 0.6 is above max 0.5",
                "max_moves: expected a whole number ≥ 0, got -1", "extra: unknown key"):
        assert msg in said, msg
