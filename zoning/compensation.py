"""Ecosystem service value (ESV) and ecological compensation priority, per county.

The equivalent-factor method of Xie et al. (2015): the value of service f is Σ_k A_k · e_kf · D, with A_k the
area of ecosystem type k (hm²), e_kf the equivalent factor (``zoning/data/esv_factors.toml``) and D the value of
one standard equivalent (yuan/hm²·a). Land-cover codes reach the types through a mapping per legend
(``zoning/data/esv_legends.toml``). Pure functions: the tables and the raster fractions in, tables out.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError

D_RANGE = (1.0, 50_000.0)  # yuan/hm²: published national and provincial values lie between about 1,000 and 10,000
CROP_COLUMNS = ("sown_ha", "price_yuan_per_kg", "yield_kg_per_ha")
PRIORITY_CLASSES = (("first", "一级", "first", 0.2), ("second", "二级", "second", 0.5), ("third", "三级", "third", 1.0))


@dataclass(frozen=True)
class Service:
    key: str
    zh: str
    en: str
    market: bool


@dataclass(frozen=True)
class Factors:
    """The equivalent-factor table: ``matrix[type, service]`` in the order of ``types`` and ``services``."""

    name: str
    services: tuple[Service, ...]
    types: dict[str, dict]  # key → {"zh", "en", "ecological"}
    matrix: np.ndarray
    equivalent_value: float  # D, yuan/hm²·a
    equivalent_value_source: str
    sources: tuple[dict, ...] = ()

    def type_keys(self) -> list[str]:
        return list(self.types)


@dataclass(frozen=True)
class TypeMap:
    """Land-cover code → shares of ecosystem types (each code's shares sum to 1); ``valueless`` codes hold none."""

    legend: str
    source: str
    shares: dict[int, dict[str, float]]
    valueless: frozenset[int]


def _data(name: str) -> str:
    return resources.files("zoning.data").joinpath(name).read_text(encoding="utf-8")


def load_factors(text: str | None = None, source: str = "esv_factors.toml") -> Factors:
    """The factor table (the shipped one, or TOML text written like it), validated with errors naming the key."""
    try:
        raw = tomllib.loads(_data("esv_factors.toml") if text is None else text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    problems = []
    services = tuple(Service(s.get("key", ""), s.get("zh", ""), s.get("en", ""), bool(s.get("market")))
                     for s in raw.get("services", []))
    if not services:
        problems.append("services: missing; list the services with key, zh, en and market")
    types, rows = {}, []
    for key, t in raw.get("types", {}).items():
        f = t.get("factors")
        if not isinstance(f, list) or len(f) != len(services) or \
                not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in f):
            problems.append(f"types.{key}.factors: expected {len(services)} numbers, one per service")
            continue
        types[key] = {"zh": t.get("zh", key), "en": t.get("en", key), "ecological": bool(t.get("ecological"))}
        rows.append([float(x) for x in f])
    d = raw.get("equivalent_value_yuan_per_ha")
    try:
        check_equivalent_value(d, f"{source}: equivalent_value_yuan_per_ha")
    except ConfigError as exc:
        problems.append(str(exc).split(": ", 1)[1])
    if problems:
        raise ConfigError(f"{source}: {len(problems)} problem(s) in the factor table", problems)
    return Factors(str(raw.get("name", source)), services, types, np.array(rows, dtype=float), float(d),
                   str(raw.get("equivalent_value_source", "")), tuple(raw.get("sources", [])))


def check_equivalent_value(d, where: str = "--equivalent-value") -> float:
    """D in yuan/hm²: a positive, finite and plausible number, else a :class:`ConfigError` naming ``where``."""
    lo, hi = D_RANGE
    if isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d) or not lo <= d <= hi:
        raise ConfigError(f"{where}: {d!r} is not a plausible value of one standard equivalent; expected {lo:,.0f} "
                          f"to {hi:,.0f} yuan/hm² (Xie et al. 2015: 3,406.50 for 2010; local studies: about 1,000 "
                          "to 10,000)")
    return float(d)


def equivalent_value(crops: pd.DataFrame) -> float:
    """D = 1/7 · Σ m_i p_i q_i / M from the main grain crops: sown area m_i (hm², ``sown_ha``), price p_i
    (yuan/kg, ``price_yuan_per_kg``) and yield q_i (kg/hm², ``yield_kg_per_ha``); M = Σ m_i. The 1/7: natural
    ecosystems give about a seventh of cropland's food value without human input (Xie et al. 2015)."""
    need = list(CROP_COLUMNS)
    missing = [c for c in need if c not in crops.columns]
    if missing:
        raise DataError(f"crop table: missing column(s) {', '.join(missing)}; expected crop, {', '.join(need)}")
    v = crops[need].apply(pd.to_numeric, errors="coerce")
    bad = v.isna() | (v < 0) | ~np.isfinite(v)
    if bad.any().any():
        r, c = np.argwhere(bad.to_numpy())[0]
        row = crops["_row"].iloc[r] if "_row" in crops else r + 1
        v = crops[need[c]].iloc[r]
        shown = f"{v:g}" if isinstance(v, (int, float, np.number)) else repr(v)
        raise DataError(f"crop table: row {row}, {need[c]} = {shown} (a number ≥ 0 is needed)")
    m = v["sown_ha"].sum()
    if m <= 0:
        raise DataError("crop table: the sown areas add up to 0")
    return check_equivalent_value(float((v["sown_ha"] * v["price_yuan_per_kg"] * v["yield_kg_per_ha"]).sum() / m / 7),
                                  "the value of one standard equivalent computed from the crop table")


def load_types(legend: str, factors: Factors, text: str | None = None, source: str | None = None) -> TypeMap:
    """The code → type mapping of a shipped legend, or from TOML text (``codes`` and ``valueless`` at the top level,
    or one table per legend like the shipped file)."""
    try:
        raw = tomllib.loads(_data("esv_legends.toml") if text is None else text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    where = source or "esv_legends.toml"
    if "codes" not in raw:
        if legend not in raw:
            raise ConfigError(f"{where}: no mapping of land-cover codes to ecosystem types for the legend {legend!r}"
                              f" (mappings: {', '.join(raw) or 'none'}). Give one with --types FILE.toml.")
        raw, where = raw[legend], f"{where} [{legend}]"
    problems, shares = [], {}
    for code, v in raw.get("codes", {}).items():
        try:
            c = int(code)
        except ValueError:
            problems.append(f"codes.{code}: not an integer land-cover code")
            continue
        s = {v: 1.0} if isinstance(v, str) else v if isinstance(v, dict) else None
        if s is None:
            problems.append(f"codes.{code}: expected a type name or a table of type shares")
            continue
        unknown = [k for k in s if k not in factors.types]
        if unknown:
            problems.append(f"codes.{code}: unknown type(s) {', '.join(unknown)}; types: {', '.join(factors.types)}")
        elif not all(isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0 for x in s.values()) or \
                abs(sum(s.values()) - 1.0) > 1e-6:
            problems.append(f"codes.{code}: the shares {s} must be ≥ 0 and add up to 1")
        else:
            shares[c] = {k: float(x) for k, x in s.items()}
    valueless = raw.get("valueless", [])
    if not isinstance(valueless, list) or not all(isinstance(c, int) and not isinstance(c, bool) for c in valueless):
        problems.append("valueless: expected a list of integer codes")
        valueless = []
    both = sorted(set(valueless) & set(shares))
    if both:
        problems.append(f"code(s) {', '.join(map(str, both))} are both valueless and mapped to a type")
    if problems:
        raise ConfigError(f"{where}: {len(problems)} problem(s) in the ecosystem type mapping", problems)
    return TypeMap(legend, str(raw.get("source", where)), shares, frozenset(valueless))


def check_mapped(codes: np.ndarray, area: np.ndarray, types: TypeMap, nodata: tuple, source: str) -> None:
    """Every land-cover code under the counties has a type or is declared valueless, else a :class:`DataError`
    naming the codes and the area they cover: a class left out would silently count as worth nothing."""
    codes, area = np.asarray(codes, dtype=float), np.asarray(area, dtype=float)
    keep = np.isfinite(codes) & (area > 0)
    ints = codes[keep].astype(np.int64)
    known = np.isin(ints, list(types.shares) + list(types.valueless) + [int(c) for c in nodata if c is not None])
    if not known.all():
        miss = pd.Series(area[keep][~known]).groupby(ints[~known]).sum().sort_values(ascending=False)
        total = area[keep].sum()
        listing = ", ".join(f"{c} ({a / total:.1%} of the area)" for c, a in miss.items())
        raise DataError(f"land-cover raster {source}: code(s) {listing} have no ecosystem type in the {types.legend} "
                        f"mapping ({types.source}). Map them to a type, or declare them valueless, in a file given "
                        "with --types (see `zoning compensate --show`).")


def type_areas(codes: list, fracs: list, area_ha: np.ndarray, types: TypeMap, factors: Factors,
               paddy_share: np.ndarray | None = None) -> pd.DataFrame:
    """Hectares of each ecosystem type per county: the county's true area times each code's true-area fraction,
    spread over the code's types. ``paddy_share`` (0–1, NaN for none) moves that share of dry cropland to paddy."""
    keys = factors.type_keys()
    n = len(area_ha)
    lut_codes = np.array(sorted(types.shares), dtype=np.int64)
    lut = np.array([[types.shares[c].get(k, 0.0) for k in keys] for c in lut_codes]).reshape(len(lut_codes), len(keys))
    lens = np.array([len(c) for c in codes], dtype=np.int64)
    flat_c = np.concatenate(codes) if n else np.zeros(0)
    flat_f = np.concatenate(fracs) if n else np.zeros(0)
    county = np.repeat(np.arange(n), lens)
    ok = np.isfinite(flat_c) & (flat_c == np.round(flat_c))
    ints = np.where(ok, flat_c, -1).astype(np.int64)
    pos = np.searchsorted(lut_codes, ints).clip(0, max(len(lut_codes) - 1, 0))
    hit = ok & (lut_codes[pos] == ints) if len(lut_codes) else np.zeros(len(ints), dtype=bool)
    out = np.zeros((n, len(keys)))
    np.add.at(out, county[hit], lut[pos[hit]] * flat_f[hit, None])
    out *= np.asarray(area_ha, dtype=float)[:, None]
    if paddy_share is not None and "paddy" in keys and "dry_cropland" in keys:
        share = np.nan_to_num(np.clip(np.asarray(paddy_share, dtype=float), 0, 1))
        dry, paddy = keys.index("dry_cropland"), keys.index("paddy")
        out[:, paddy] += out[:, dry] * share
        out[:, dry] *= 1 - share
    return pd.DataFrame(out, columns=keys)


def service_values(type_ha: pd.DataFrame, factors: Factors, d: float) -> pd.DataFrame:
    """Yuan a year per service (``esv_<service>_yuan``), the total and its parts: market (the services sold on a
    market), non-market (the other eight) and the total without water, whose hydrological regulation alone makes
    one hm² worth 5.5 hm² of broadleaf forest."""
    a = type_ha[factors.type_keys()].to_numpy(dtype=float)
    v = a @ factors.matrix * d
    out = pd.DataFrame(v, columns=[f"esv_{s.key}_yuan" for s in factors.services], index=type_ha.index)
    market = np.array([s.market for s in factors.services])
    out.insert(0, "esv_yuan", v.sum(axis=1))
    out["esv_market_yuan"] = v[:, market].sum(axis=1)
    out["esv_nonmarket_yuan"] = v[:, ~market].sum(axis=1)
    dry = np.array([k != "water" for k in factors.type_keys()])
    out["esv_without_water_yuan"] = (a[:, dry] @ factors.matrix[dry] * d).sum(axis=1)  # summed, not subtracted: 0 is 0
    return out


def type_values(type_ha: pd.DataFrame, factors: Factors, d: float) -> pd.DataFrame:
    """Yuan a year per ecosystem type (all services), to say which types carry a county's value."""
    keys = factors.type_keys()
    return pd.DataFrame(type_ha[keys].to_numpy(dtype=float) * factors.matrix.sum(axis=1) * d, columns=keys,
                        index=type_ha.index)


def reasons(by_type: pd.DataFrame, factors: Factors, top: int = 3) -> pd.Series:
    """A bilingual sentence per county naming the types that carry most of its value, with their shares."""
    v = by_type.to_numpy(dtype=float)
    total = v.sum(axis=1)
    order = np.argsort(-v, axis=1, kind="stable")[:, :top]
    keys = np.array(by_type.columns)
    out = []
    for i in range(len(v)):
        if not total[i] > 0:
            out.append("无生态系统服务价值(建设用地或无数据) no ecosystem service value (built-up or no data)")
            continue
        parts = [(keys[j], v[i, j] / total[i]) for j in order[i] if v[i, j] / total[i] >= 0.05]
        zh = "、".join(f"{factors.types[k]['zh']} {s:.0%}" for k, s in parts)
        en = ", ".join(f"{factors.types[k]['en']} {s:.0%}" for k, s in parts)
        out.append(f"价值主要来自{zh} · value mostly from {en}")
    return pd.Series(out, index=by_type.index)


def priority(nonmarket: pd.Series, gdp: pd.Series | None, population: pd.Series | None) -> pd.DataFrame:
    """The compensation priority score and its rank and class within the run.

    The score is the non-market ESV per yuan of GDP where GDP is given (the ecological compensation priority
    sequence: the more a county's ecosystems give others beyond its own economy, the earlier it is paid), else the
    non-market ESV per resident. Rank 1 is the highest score; the classes are the first fifth of the ranked
    counties (一级), the next three tenths (二级) and the rest (三级). A county without the figure has none.
    """
    idx = nonmarket.index
    gdp = pd.to_numeric(gdp, errors="coerce") if gdp is not None else pd.Series(np.nan, index=idx)
    pop = pd.to_numeric(population, errors="coerce") if population is not None else pd.Series(np.nan, index=idx)
    with np.errstate(divide="ignore", invalid="ignore"):
        by_gdp = nonmarket / gdp.where(gdp > 0)
        by_pop = nonmarket / pop.where(pop > 0)
    use_gdp = gdp.notna().any()
    score = by_gdp if use_gdp else by_pop
    basis = pd.Series(np.where(score.notna(), "gdp" if use_gdp else "population", ""), index=idx)
    rank = score.rank(ascending=False, method="min")
    n = int(score.notna().sum())
    cls = pd.Series("", index=idx, dtype=object)
    lower = 0.0
    for code, _zh, _en, upper in PRIORITY_CLASSES:
        sel = score.notna() & (rank > lower * n) & (rank <= np.ceil(upper * n))
        cls[sel & cls.eq("")] = code
        lower = upper
    return pd.DataFrame({"priority_score": score, "priority_basis": basis, "priority_rank": rank.astype("Int64"),
                         "priority_class": cls}, index=idx)

