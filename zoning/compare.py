"""How far a classification is from an official scheme: agreement, Cohen's kappa, the confusion matrix and each
disagreement with the indicators behind it (pure: tables in, tables out)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import DataError
from .model import ZONES

# zone names as official documents write them (主体功能区规划 and its provincial versions)
ZONE_NAMES = {
    "urbanization": "urbanization", "urban": "urbanization", "城市化地区": "urbanization",
    "城镇化地区": "urbanization", "优化开发区域": "urbanization", "重点开发区域": "urbanization",
    "优化开发区": "urbanization", "重点开发区": "urbanization",
    "grain_production": "grain_production", "agricultural": "grain_production", "农产品主产区": "grain_production",
    "ecological": "ecological", "重点生态功能区": "ecological", "生态功能区": "ecological",
}


def normalise_zones(values: pd.Series, source: str) -> pd.Series:
    """Reference zone names (English or Chinese) → zone codes; unknown values are an error that lists them."""
    s = values.astype(str).str.strip()
    out = s.map(lambda v: ZONE_NAMES.get(v, ZONE_NAMES.get(v.lower())))
    bad = sorted(set(s[out.isna() & values.notna() & (s != "")]))
    if bad:
        raise DataError(f"{source}: unknown zone value(s) {', '.join(map(repr, bad[:10]))}; use urbanization, "
                        "grain_production, ecological or 城镇化地区/城市化地区/优化开发区域/重点开发区域, 农产品主产区, "
                        "重点生态功能区.")
    return out


@dataclass
class Comparison:
    table: pd.DataFrame  # one row per county: reference_zone (NaN where absent) and agrees (NA where absent)
    confusion: pd.DataFrame  # rows: reference, columns: classified
    agreement: float
    kappa: float
    compared: int
    unmatched: list[str]  # reference ids that match no county


def compare(zones: pd.DataFrame, reference: pd.DataFrame) -> Comparison:
    """Compare ``zones`` (``county_id``, ``zone`` …) with ``reference`` (``county_id``, ``reference_zone``)."""
    ref = reference.drop_duplicates("county_id").set_index("county_id")["reference_zone"]
    unmatched = sorted(set(ref.index) - set(zones["county_id"]))
    t = zones.copy()
    t["reference_zone"] = t["county_id"].map(ref)
    both = t["reference_zone"].notna()
    t["agrees"] = pd.array(np.where(both, t["zone"] == t["reference_zone"], pd.NA), dtype="boolean")
    sub = t[both]
    confusion = pd.crosstab(pd.Categorical(sub["reference_zone"], ZONES), pd.Categorical(sub["zone"], ZONES),
                            rownames=["reference"], colnames=["classified"], dropna=False)
    n = int(both.sum())
    agreement = float((sub["zone"] == sub["reference_zone"]).mean()) if n else float("nan")
    return Comparison(t, confusion, agreement, cohen_kappa(confusion.to_numpy()), n, unmatched)


def cohen_kappa(confusion: np.ndarray) -> float:
    """Cohen's kappa of a square confusion matrix: (observed − chance agreement) ÷ (1 − chance)."""
    m = np.asarray(confusion, dtype=float)
    n = m.sum()
    if n == 0:
        return float("nan")
    po = np.trace(m) / n
    pe = float((m.sum(axis=0) * m.sum(axis=1)).sum()) / n**2
    return float((po - pe) / (1 - pe)) if pe < 1 else float("nan")  # one class only: undefined
