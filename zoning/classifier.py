"""Classify counties into main function zones with a transparent, data-driven model (see ``default_model.toml``)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from . import expr
from .model import ZONES, Model, Term, with_functions

SCORE_COLS = [f"score_{z}" for z in ZONES]


def grade(x: np.ndarray, breaks: list[float], descending: bool = False) -> np.ndarray:
    """Grade values 1-5 by four increasing breakpoints (each the lower bound of the next grade); NaN stays NaN."""
    x = np.asarray(x, dtype=float)
    g = 1.0 + (x[:, None] >= np.asarray(breaks)[None, :]).sum(axis=1)
    if descending:
        g = 6.0 - g
    return np.where(np.isnan(x), np.nan, g)


def grade_minmax(x: np.ndarray, descending: bool = False) -> np.ndarray:
    """Grade 1-5 linearly between the study area's minimum and maximum (study-dependent; an option)."""
    x = np.asarray(x, dtype=float)
    lo, hi = np.nanmin(x) if np.isfinite(x).any() else np.nan, np.nanmax(x) if np.isfinite(x).any() else np.nan
    if not np.isfinite(hi - lo) or hi == lo:
        return np.where(np.isnan(x), np.nan, 3.0)
    g = 1.0 + 4.0 * (x - lo) / (hi - lo)
    return 6.0 - g if descending else g


def term_grades(ind: pd.DataFrame, term: Term, scaling: str) -> np.ndarray:
    grades = []
    for name, breaks, desc in term.parts:
        x = ind[name].to_numpy(dtype=float) if name in ind else np.full(len(ind), np.nan)
        grades.append(grade(x, breaks, desc) if scaling == "breaks" else grade_minmax(x, desc))
    g = np.vstack(grades)
    with warnings.catch_warnings():  # all-NaN columns (indicator missing) are expected: they stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmax(g, axis=0)


def entropy_weights(grades: np.ndarray) -> np.ndarray:
    """Entropy weight method over columns of a (counties × terms) grade matrix (NaN-aware)."""
    g = np.where(np.isnan(grades), np.nan, grades)
    n = np.sum(~np.isnan(g), axis=0)
    with np.errstate(all="ignore"):
        p = g / np.nansum(g, axis=0)
        e = -np.nansum(np.where(p > 0, p * np.log(p), 0.0), axis=0) / np.log(np.maximum(n, 2))
    d = np.where(n > 1, 1.0 - e, 0.0)
    return d / d.sum() if d.sum() > 0 else np.full(len(d), 1.0 / len(d))


def function_scores(ind: pd.DataFrame, model: Model) -> tuple[pd.DataFrame, dict]:
    """Scores U, A, E (1-5) per county, renormalised over the indicators present.

    Returns
    -------
    (DataFrame with ``score_*`` and ``missing_weight_*`` columns; detail dict per function with the grade matrix,
    the weights used and the term names, for explanations)
    """
    out = pd.DataFrame(index=ind.index)
    detail = {}
    scaling = model.settings["scaling"]
    for f in ZONES:
        terms = model.functions[f]
        G = np.column_stack([term_grades(ind, t, scaling) for t in terms]) if terms else np.zeros((len(ind), 0))
        w = np.array([t.weight for t in terms], dtype=float)
        if model.settings["weighting"] == "entropy":
            w = entropy_weights(G)
        present = ~np.isnan(G)
        wp = present * w[None, :]
        wsum = wp.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            score = np.nansum(np.nan_to_num(G) * wp, axis=1) / wsum
        # Rounded so that rules comparing a score with a threshold (U >= 3.0) do not flip on float noise when
        # all weights are scaled by the same factor.
        score = np.round(np.where(wsum > 0, score, np.nan), 9)
        frame = ind.assign(admin_type=ind.get("admin_type", "COUNTY"))
        for cap in model.caps:
            if cap["function"] == f:
                hit = expr.evaluate(cap["when"], frame)
                score = np.where(hit, np.minimum(score, cap["max_score"]), score)
        out[f"score_{f}"] = score
        total = w.sum() if w.sum() > 0 else 1.0
        out[f"missing_weight_{f}"] = 1.0 - wsum / total
        detail[f] = {"grades": G, "weights": w, "names": [t.name for t in terms],
                     "indicators": ["/".join(p[0] for p in t.parts) for t in terms]}
    return out, detail


def _top_two(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = np.where(np.isnan(scores), -np.inf, scores)
    order = np.argsort(-s, axis=1, kind="stable")
    top = order[:, 0]
    second = order[:, 1]
    rows = np.arange(len(s))
    with np.errstate(invalid="ignore"):
        margin = s[rows, top] - s[rows, second]
    return top, second, np.where(np.isfinite(margin), margin, 0.0)


def decide(ind: pd.DataFrame, scores: pd.DataFrame, model: Model) -> pd.DataFrame:
    """Apply rules in order, then arg-max with tie-break. Returns ``zone``, ``rule``, ``margin``."""
    n = len(ind)
    frame = pd.concat([ind, scores], axis=1)
    if "admin_type" not in frame:
        frame["admin_type"] = "COUNTY"
    zone = np.full(n, None, dtype=object)
    rule = np.full(n, None, dtype=object)
    for r in model.rules:
        hit = expr.evaluate(r["when"], frame) & (zone == None)  # noqa: E711  (object array)
        zone[hit] = r["zone"]
        rule[hit] = r["id"]
    S = scores[SCORE_COLS].to_numpy(dtype=float)
    top, second, margin = _top_two(S)
    no_data = np.isnan(S).all(axis=1)
    tb = model.tie_break
    fallback = tb["fallback"]
    open_ = zone == None  # noqa: E711
    zone[open_] = np.array(ZONES, dtype=object)[top[open_]]
    rule[open_] = "highest_score"
    tie = open_ & (margin < tb["margin"]) & ~no_data
    if tie.any():
        pair = {i: {ZONES[top[i]], ZONES[second[i]]} for i in np.nonzero(tie)[0]}
        decided = np.zeros(n, dtype=bool)
        for pr in tb["prefer"]:
            cond = expr.evaluate(pr.get("when", "1 == 1"), frame) & tie & ~decided
            for i in np.nonzero(cond)[0]:
                if pr["zone"] in pair[i]:
                    zone[i] = pr["zone"]
                    decided[i] = True
        for i in np.nonzero(tie & ~decided)[0]:
            zone[i] = next(z for z in fallback if z in pair[i])
        rule[tie] = "tie_break"
    zone[no_data & open_] = fallback[0]
    rule[no_data & open_] = "no_data"
    return pd.DataFrame({"zone": zone, "rule": rule, "margin": margin}, index=ind.index)


def _top_factors(detail: dict, zone: np.ndarray, k: int) -> list[str]:
    """The indicators that weigh most in the chosen zone's score, Chinese label first (``耕地占比 cropland_share
    grade 3 × 62%``); indicators without data are never listed."""
    out = []
    for i, z in enumerate(zone):
        d = detail[z]
        g = d["grades"][i]
        w = np.where(np.isnan(g), 0.0, d["weights"])
        if w.sum() == 0:
            out.append("")
            continue
        contrib = w / w.sum() * np.nan_to_num(g)
        order = np.argsort(-contrib, kind="stable")[:k]
        out.append("; ".join(f"{_zh(d['indicators'][j])} {d['indicators'][j]} grade {g[j]:.0f} × {w[j] / w.sum():.0%}"
                             for j in order if w[j] > 0))
    return out


def _zh(name: str) -> str:
    """Chinese label of an indicator (or of each part of a combined one, ``ecological_share/barren_share``)."""
    from .outputs import zh

    return "/".join(zh(p) for p in name.split("/"))


def _evidence(rule: dict | None, ind: pd.DataFrame, i: int) -> str:
    """The values of the indicators a rule tests, for one county; those without data are said to have none."""
    if rule is None or not rule.get("when"):
        return ""
    from .expr import names

    parts = []
    for n in sorted(names(rule["when"])):
        if n not in ind.columns or n.startswith("score_") or n == "admin_type":
            continue
        v = ind[n].iat[i]
        parts.append(f"{_zh(n)} {n} = {v:.4g}" if isinstance(v, (int, float, np.number)) and v == v
                     else f"{_zh(n)} {n}: 无数据 no data")
    return f" [依据 evidence: {'; '.join(parts)}]" if parts else ""


def classify(ind: pd.DataFrame, model: Model) -> pd.DataFrame:
    """Classify each row of an indicator table.

    Parameters
    ----------
    ind : one row per county with indicator columns (see :data:`zoning.model.INDICATORS`), ``admin_type`` and
        optionally ``landcover_cells`` (number of land-cover cells' worth of area, for the low-confidence flag)
    model : a validated :class:`~zoning.model.Model`

    Returns
    -------
    DataFrame (same index) with ``zone``, ``zone_zh``, the three ``score_*``, ``margin``, ``rule``, ``top_factors``,
    ``missing``, ``low_confidence`` (fewer than ``min_cells`` land-cover cells), ``review``, ``review_reasons`` and
    a one-line bilingual ``reason``.
    """
    scores, detail = function_scores(ind, model)
    dec = decide(ind, scores, model)
    st = model.settings
    zone = dec["zone"].to_numpy()
    used = model.indicators()
    gone = np.column_stack([ind[c].isna().to_numpy() if c in ind else np.ones(len(ind), dtype=bool)
                            for c in used]) if used else np.zeros((len(ind), 0), dtype=bool)
    missing = [", ".join(np.asarray(used, dtype=object)[row]) for row in gone]
    miss_w = scores[[f"missing_weight_{z}" for z in ZONES]].max(axis=1).to_numpy()
    cells = ind["landcover_cells"].to_numpy(dtype=float) if "landcover_cells" in ind else np.full(len(ind), np.inf)
    rule_arr, margin_arr = dec["rule"].to_numpy(), dec["margin"].to_numpy(dtype=float)
    shares = {k: ind[f"{k}_valid_share"].to_numpy(dtype=float) if f"{k}_valid_share" in ind
              else np.ones(len(ind)) for k in ("landcover", "dem")}
    reasons_review = []
    for i in range(len(ind)):  # short texts per county, Chinese first; every input is a numpy array here
        r = []
        if rule_arr[i] in ("highest_score", "tie_break") and margin_arr[i] < st["review_margin"]:
            r.append(f"得分接近 small margin {margin_arr[i]:.2f}")
        if not cells[i] >= st["min_cells"]:
            r.append(f"像元过少 few cells ({cells[i]:.1f})" if np.isfinite(cells[i]) else "无栅格像元 no raster cells")
        if miss_w[i] >= st["max_missing_weight"]:
            r.append(f"缺少数据 missing data ({miss_w[i]:.0%} of a function's weight)")
        if rule_arr[i] == "no_data":
            r.append("无指标数据 no indicator data")
        for kind in ("landcover", "dem"):
            share = shares[kind][i]
            if not share >= 0.5:
                r.append(f"栅格无数据 {kind} raster has no data for "
                         f"{1 - (share if share == share else 0):.0%} of the county")
        reasons_review.append("; ".join(r))
    zone_zh = np.array([model.zones[z]["label_zh"] for z in zone], dtype=object)
    rule_label = {r["id"]: (r.get("label", r["id"]), r.get("label_zh", r["id"])) for r in model.rules}
    rule_label.update({"highest_score": ("highest function score", "功能得分最高"),
                       "tie_break": ("tie-break between the top two scores", "前两项得分接近，按规则取舍"),
                       "no_data": ("no data: fallback zone", "无数据，取默认类型")})
    out = pd.concat([dec, scores[SCORE_COLS]], axis=1)
    out["zone_zh"] = zone_zh
    out["top_factors"] = _top_factors(detail, zone, st["top_factors"])
    out["missing"] = missing
    out["low_confidence"] = ~(cells >= st["min_cells"])
    out["review"] = np.array([bool(r) for r in reasons_review])
    out["review_reasons"] = reasons_review
    S = scores[SCORE_COLS].to_numpy()
    rules_by_id = {r["id"]: r for r in model.rules}
    out["reason"] = [
        f"{zone_zh[i]}：{rule_label[rule_arr[i]][1]} | {zone[i]}: {rule_label[rule_arr[i]][0]} "
        f"(U {S[i, 0]:.2f}, A {S[i, 1]:.2f}, E {S[i, 2]:.2f}){_evidence(rules_by_id.get(rule_arr[i]), ind, i)}"
        for i in range(len(ind))]
    # the rule's short Chinese name beside its id (scripts split on " | ")
    out["rule"] = [f"{rule_label[r][1].split('：')[0]} | {r}" for r in rule_arr]
    return out[["zone", "zone_zh"] + SCORE_COLS + ["margin", "rule", "top_factors", "missing", "low_confidence",
                                                   "review", "review_reasons", "reason"]]


def perturb(model: Model, rng: np.random.Generator, spread: float) -> Model:
    """A copy of the model with every weight and breakpoint multiplied by U(1 − spread, 1 + spread)."""
    funcs = {}
    for f, terms in model.functions.items():
        funcs[f] = [Term(t.name, t.weight * rng.uniform(1 - spread, 1 + spread),
                         [(ind, sorted(b * rng.uniform(1 - spread, 1 + spread) for b in br), d)
                          for ind, br, d in t.parts]) for t in terms]
    return with_functions(model, funcs)


def sensitivity(ind: pd.DataFrame, model: Model, runs: int, spread: float = 0.10, seed: int = 0,
                base: np.ndarray | None = None, on_run=None) -> pd.DataFrame:
    """Share of perturbed runs that give each county its base zone, and the most likely other zone.

    ``on_run(done, total)``, if given, is called after each run (for progress displays).
    Returns ``stability`` (0-1) and ``alt_zone`` (empty when no run changed the zone).
    """
    rng = np.random.default_rng(seed)
    if base is None:
        base = classify(ind, model)["zone"].to_numpy()
    counts = {z: np.zeros(len(ind)) for z in ZONES}
    for i in range(runs):
        m = perturb(model, rng, spread)
        sc, _ = function_scores(ind, m)
        z = decide(ind, sc, m)["zone"].to_numpy()
        for k in ZONES:
            counts[k] += z == k
        if on_run is not None:
            on_run(i + 1, runs)
    same = np.array([counts[b][i] for i, b in enumerate(base)]) / max(runs, 1)
    alt = []
    for i, b in enumerate(base):
        others = [(counts[z][i], z) for z in ZONES if z != b and counts[z][i] > 0]
        alt.append(max(others)[1] if others else "")
    return pd.DataFrame({"stability": same, "alt_zone": alt}, index=ind.index)


def flag_unstable(review: pd.Series, reasons: pd.Series, stability: pd.Series, min_stability: float):
    """Counties whose zone changes in many perturbed runs go to review, with the reason."""
    low = stability < min_stability
    text = stability.map(lambda v: f"扰动下不稳定 unstable under ±perturbation (stability {v:.2f})")
    reasons = reasons.where(~low, np.where(reasons.astype(str) != "", reasons.astype(str) + "; ", "") + text)
    return review | low, reasons
