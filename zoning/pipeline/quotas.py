"""Quota mode wiring (``classify --quota``): the model's zones in, the zones that meet the quotas out, with the
unconstrained zone, the move, its cost and its reason kept beside them (:mod:`zoning.quota`)."""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from layers import vector as lvector

from .. import outputs, quota as q, tables
from ..errors import DataError, UsageError

log = logging.getLogger("zoning")


def load(spec) -> q.Quota:
    """A quota file by path (or an already loaded :class:`~zoning.quota.Quota`)."""
    if isinstance(spec, q.Quota):
        return spec
    p = Path(spec)
    if not p.is_file():
        raise UsageError(f"--quota {p}: file not found")
    quota = q.load_quota(p.read_text(encoding="utf-8-sig"), str(p))
    if quota.lock and not Path(quota.lock).is_absolute():  # relative to the quota file, as a project's paths
        quota = replace(quota, lock=str(p.parent / quota.lock))
    return quota


def _locks(path: str, ids: pd.Series) -> np.ndarray:
    """Zone index per county from the lock table (county_id, zone as code or Chinese label); −1 where free."""
    raw = lvector.read_table(path, role="quota lock")
    table, _ = tables.clean_table(raw, f"quota lock table {path}", ())
    idc = next((c for c in ("county_id", "adcode", "code", "id") if c in table.columns), table.columns[0])
    zc = next((c for c in ("zone", "reference_zone", "主体功能区") if c in table.columns), None)
    if zc is None:
        raise DataError(f"quota lock table {path}: no zone column (zone); columns: {', '.join(table.columns)}")
    names = {**{k: k for k in outputs.ZONES}, **{c.zh: k for k, c in outputs.ZONES.items()}}
    zone = table[zc].astype(str).str.strip().map(names)
    bad = table[zone.isna()]
    if len(bad):
        raise DataError(f"quota lock table {path}: row {bad['_row'].iloc[0]}: zone {bad[zc].iloc[0]!r} is not one of "
                        f"{', '.join(outputs.ZONES)} (or 城镇化地区, 农产品主产区, 重点生态功能区)")
    keys = table[idc].astype(str).str.strip().str.removesuffix(".0")
    unknown = sorted(set(keys) - set(ids.astype(str)))
    if unknown:
        log.warning("quota lock table %s: %d id(s) match no county (e.g. %s)", path, len(unknown), ", ".join(unknown[:5]))
    idx = dict(zip(keys, zone.map(q.ZONES.index)))
    return np.array([idx.get(str(i), -1) for i in ids], dtype=int)


def apply(zones: pd.DataFrame, fields: pd.DataFrame, spec) -> tuple[pd.DataFrame, dict]:
    """The zones under the quota: ``zone`` the quota's answer, ``zone_unconstrained`` the model's, ``moved_by_quota``,
    ``quota_cost`` and a reason for each move; and the run facts."""
    quota = load(spec)
    base = zones["zone"].map(q.ZONES.index).to_numpy()
    scores = zones[[f"score_{z}" for z in q.ZONES]].to_numpy(dtype=float)
    own = scores[np.arange(len(zones)), base]
    # a county with no score is expensive to move: its zone came from a rule or too little data to judge
    costs = np.nan_to_num(np.abs(own[:, None] - scores), nan=1.0)
    area = zones["area_km2"].to_numpy(dtype=float)
    people = (zones["pop_density"] * zones["area_km2"]).to_numpy(dtype=float) if "pop_density" in zones else \
        np.full(len(zones), np.nan)
    if any(c.measure == "population" for c in quota.constraints) and np.isnan(people).any():
        log.warning("quota: %d counties have no population figure; they count as 0 residents in the population "
                    "quotas", int(np.isnan(people).sum()))
    weights = {"land": area, "units": np.ones(len(zones)), "population": np.nan_to_num(people)}
    ids = zones["county_id"].astype(str)
    groups = [q.group_keys(c, ids, fields) for c in quota.constraints]
    locked = _locks(quota.lock, ids) if quota.lock else np.full(len(zones), -1)
    neighbours = q.adjacency(np.asarray(zones.geometry.values)) if not quota.isolated else None
    sol = q.solve(costs, base, quota, weights, groups, locked, neighbours)
    out = zones.copy()
    out["zone_unconstrained"] = zones["zone"]
    out["zone"] = [q.ZONES[k] for k in sol.zone]
    out["zone_zh"] = out["zone"].map({k: c.zh for k, c in outputs.ZONES.items()})
    moved = sol.zone != base
    out["moved_by_quota"] = moved
    out["quota_cost"] = sol.cost
    why = [f"配额调整为{outputs.ZONES[q.ZONES[z]].zh} moved to {q.ZONES[z]} to meet {b}; score difference {c:.3f}"
           if m else "" for z, b, c, m in zip(sol.zone, sol.binding, sol.cost, moved)]
    out["reason"] = [f"{r}；{w}" if w else r for r, w in zip(out["reason"].fillna(""), why)]
    info = {"file": quota.source, "lock": quota.lock, "isolated": quota.isolated, "max_moves": quota.max_moves,
            "constraints": [{"label": c.label(), "zone": c.zone, "measure": c.measure, "group": c.group,
                             "min": c.min, "max": c.max, "achieved": a}
                            for c, a in zip(quota.constraints, sol.achieved)],
            "total_cost": float(sol.cost.sum()), "moves": int(moved.sum()), "locked": int((locked >= 0).sum()),
            "gap": quota.gap,
            "solver": q.solver_version(), "status": sol.status, "seconds": round(sol.seconds, 3)}
    log.info("quota %s: %d moves, total score difference %.3f (%s, %s, %.2f s)", quota.source, info["moves"],
             info["total_cost"], info["solver"], sol.status, sol.seconds)
    return out, info
