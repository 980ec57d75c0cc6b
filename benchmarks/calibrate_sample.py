"""Calibrate the default model's one new knob, the weight of location (city_distance_km) in the urbanization
score, on half of the Sichuan reference designations, and report agreement on the other half (issue 11).

Usage: python benchmarks/calibrate_sample.py
The reference (`sample_data/designations.csv`, a source per row) is split by zone, alternate rows in county-id
order: calibration and hold-out. Each candidate weight w takes its share from the built-up (w/2) and terrain (w/2)
terms of the model without location (built-up 0.40, terrain 0.10), so the urbanization weights still add up to 1.
Prints agreement per candidate on both halves; the chosen
weight is the best on the calibration half (ties: the smaller weight).
"""
from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import zoning  # noqa: E402
from zoning import model as model_mod  # noqa: E402
from zoning.compare import normalise_zones  # noqa: E402

SAMPLE = ROOT / "sample_data"
CANDIDATES = (0.0, 0.05, 0.10, 0.15, 0.20)


def variant(w: float) -> model_mod.Model:
    raw = tomllib.loads(model_mod.default_text())
    terms = raw["functions"]["urbanization"]["terms"]
    # before location, built-up weighed 0.40 and terrain (relief, descending) 0.10: w takes half from each
    location = terms.pop("location")
    terms["built_up"]["weight"] = round(0.40 - w / 2, 3)
    if w < 0.20:
        terms["terrain"] = {"indicator": "relief", "breaks": [150.0, 300.0, 600.0, 1200.0], "descending": True,
                            "weight": round(0.10 - w / 2, 3)}
    if w:
        terms["location"] = {**location, "weight": w}
    problems: list[str] = []
    m = model_mod.validate(raw, problems)
    assert not problems, problems
    return m


def main() -> None:
    ref = pd.read_csv(SAMPLE / "designations.csv", dtype=str).sort_values("county_id")
    ref["zone"] = normalise_zones(ref["zone"], "designations.csv")
    ref["half"] = ref.groupby("zone").cumcount() % 2  # 0: calibration, 1: hold-out
    rows = []
    for w in CANDIDATES:
        z = zoning.classify(SAMPLE / "counties.gpkg", {"landcover": str(SAMPLE / "landcover.tif"),
                                                        "dem": str(SAMPLE / "dem.tif")},
                            attributes=SAMPLE / "stats.csv", model=variant(w))
        got = ref.merge(z[["county_id", "zone"]], on="county_id", suffixes=("", "_got"))
        ok = got["zone"] == got["zone_got"]
        rows.append((w, ok[got["half"] == 0].mean(), ok[got["half"] == 1].mean(), ok.mean()))
    n0, n1 = (ref["half"] == 0).sum(), (ref["half"] == 1).sum()
    print(f"reference: {len(ref)} units ({', '.join(f'{k} {v}' for k, v in ref['zone'].value_counts().items())}); "
          f"calibration {n0}, hold-out {n1}")
    print(f"{'location weight':>16}{'calibration':>13}{'hold-out':>10}{'all':>8}")
    for w, a, b, c in rows:
        print(f"{w:>16.2f}{a:>13.1%}{b:>10.1%}{c:>8.1%}")
    best = max(rows, key=lambda r: (round(r[1], 6), -r[0]))
    print(f"chosen on the calibration half: {best[0]:.2f} → hold-out agreement {best[2]:.1%}")


if __name__ == "__main__":
    main()
