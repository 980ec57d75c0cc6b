"""Land-cover legends and raster value checks: codes mapped to the groups the indicators use, values checked
before use so that another legend, an undeclared fill or a resampled (non-integer) raster is caught, not
silently turned into confident zones."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError, DataError

# the groups the indicators use (the grid handed to ``landcover_shares`` holds these codes, NaN for nodata)
GROUPS = {"built_up": 1, "cropland": 2, "mosaic": 3, "natural": 4, "water": 5, "barren": 6}
UNEXPLAINED_TOLERANCE = 0.05  # share of cells with codes outside the legend that is only warned about
DEM_RANGE_M = (-500.0, 9000.0)  # the Dead Sea shore (−430 m) to above Everest (8,849 m)
DEM_FILLS = (-32768.0, -32767.0, -9999.0, -99999.0, -3.4028234663852886e38, 32767.0, 65535.0)
FEET = {"ft", "feet", "foot", "us-ft", "us survey foot", "us_survey_foot", "international foot"}


@dataclass(frozen=True)
class Legend:
    name: str
    groups: dict[int, str]  # code → group
    nodata: tuple[int, ...]
    source: str = ""

    def codes(self) -> list[int]:
        return sorted(self.groups)


def _legend(name, source, nodata, **groups) -> Legend:
    return Legend(name, {c: g for g, codes in groups.items() for c in codes}, tuple(nodata), source)


LEGENDS = {lg.name: lg for lg in [
    # MODIS MCD12 IGBP: water is 0 in MCD12C1 and 17 in MCD12Q1; 255 is the fill
    _legend("igbp", "MODIS MCD12 IGBP (LC_Type1)", [255], natural=list(range(1, 12)) + [15], cropland=[12],
            built_up=[13], mosaic=[14], barren=[16], water=[0, 17]),
    _legend("esa_worldcover", "ESA WorldCover 10 m (2020/2021)", [0], natural=[10, 20, 30, 70, 90, 95, 100],
            cropland=[40], built_up=[50], barren=[60], water=[80]),
    _legend("clcd", "CLCD, China Land Cover Dataset 30 m (Yang & Huang)", [0], cropland=[1],
            natural=[2, 3, 4, 6, 9], water=[5], barren=[7], built_up=[8]),
    _legend("globeland30", "GlobeLand30 (NGCC)", [0, 255], cropland=[10], natural=[20, 30, 40, 50, 70, 100],
            water=[60], built_up=[80], barren=[90]),
]}


def load_legend(name_or_toml: str | None, text: str | None = None) -> Legend:
    """A shipped legend by name, or one from TOML text: ``name``, ``nodata = [..]`` and code lists per group."""
    if text is None:
        key = (name_or_toml or "igbp").lower()
        if key not in LEGENDS:
            raise ConfigError(f"unknown land-cover legend {name_or_toml!r}; use one of {', '.join(LEGENDS)} or a "
                              "legend TOML file")
        return LEGENDS[key]
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name_or_toml}: not valid TOML: {exc}") from None
    problems, groups = [], {}
    for k, v in raw.items():
        if k in ("name", "source"):
            continue
        if k != "nodata" and k not in GROUPS:
            problems.append(f"{k}: unknown key; use name, nodata and the groups {', '.join(GROUPS)}")
        elif not isinstance(v, list) or not all(isinstance(c, int) and not isinstance(c, bool) for c in v):
            problems.append(f"{k}: expected a list of integer codes")
        elif k != "nodata":
            for c in v:
                if c in groups:
                    problems.append(f"{k}: code {c} is already in {groups[c]}")
                groups[c] = k
    if not groups:
        problems.append("no codes: list the codes of at least one group, e.g. built_up = [13]")
    if problems:
        raise ConfigError(f"{name_or_toml}: {len(problems)} problem(s) in the legend", problems)
    return Legend(str(raw.get("name", name_or_toml)), groups, tuple(raw.get("nodata", [])),
                  str(raw.get("source", name_or_toml)))


def check_codes(codes: np.ndarray, area: np.ndarray, legend: Legend, source: str, raster_nodata=None) -> list[str]:
    """Check the codes found under the counties (with the area each covers) against the legend.

    Raises :class:`DataError` for non-integer classes or more than 5 % of the area in codes outside the legend;
    returns warnings (a few unexplained codes, the legend's fill value present without being declared).
    """
    codes, area = np.asarray(codes, dtype=float), np.asarray(area, dtype=float)
    keep = np.isfinite(codes) & (codes != (raster_nodata if raster_nodata is not None else np.nan))
    codes, area = codes[keep], area[keep]
    warnings: list[str] = []
    total = area.sum()
    if len(codes) == 0 or total <= 0:
        return warnings
    frac = codes != np.round(codes)
    if frac.any():
        raise DataError(f"land-cover raster {source}: {area[frac].sum() / total:.1%} of the area holds non-integer "
                        f"classes (e.g. {codes[frac][0]:g}) — the raster was probably resampled bilinearly or "
                        "cubically. Resample land cover with nearest neighbour (gdalwarp -r near or -r mode).")
    ints = codes.astype(np.int64)
    known = np.isin(ints, legend.codes() + list(legend.nodata))
    if not known.all():
        share = area[~known].sum() / total
        order = np.argsort(-area[~known])[:6]
        listing = ", ".join(f"{ints[~known][i]} ({area[~known][i] / total:.1%})" for i in order)
        guess = [n for n, lg in LEGENDS.items() if np.isin(ints, lg.codes() + list(lg.nodata)).all()]
        hint = f" Its codes fit the {', '.join(guess)} legend: pass --legend {guess[0]}." if guess else \
            " Give its legend with --legend NAME or a legend TOML file (see README)."
        if share > UNEXPLAINED_TOLERANCE:
            raise DataError(f"land-cover raster {source}: {share:.1%} of the area holds codes outside the "
                            f"{legend.name} legend: {listing}.{hint}")
        warnings.append(f"land-cover raster {source}: {share:.2%} of the area holds codes outside the "
                        f"{legend.name} legend ({listing}); they are treated as nodata.")
    fills = sorted({int(c) for c in ints if c in legend.nodata})
    if fills:
        warnings.append(f"land-cover raster {source}: code(s) {', '.join(map(str, fills))} are the "
                        f"{legend.name} fill value and are treated as nodata")
    return warnings


def group_of(codes: np.ndarray, legend: Legend) -> np.ndarray:
    """Group code (:data:`GROUPS`) of each land-cover code; NaN for nodata and codes outside the legend."""
    codes = np.asarray(codes, dtype=float)
    lut_codes = np.array(legend.codes(), dtype=np.int64)
    lut_groups = np.array([GROUPS[legend.groups[c]] for c in lut_codes], dtype=float)
    out = np.full(codes.shape, np.nan)
    valid = np.isfinite(codes) & (codes == np.round(codes))
    ints = np.where(valid, codes, -1).astype(np.int64)
    pos = np.searchsorted(lut_codes, ints).clip(0, len(lut_codes) - 1)
    hit = valid & (lut_codes[pos] == ints)
    out[hit] = lut_groups[pos[hit]]
    return out


def landcover_groups(data: np.ndarray, legend: Legend, source: str) -> tuple[np.ndarray, list[str]]:
    """Map land-cover codes to group codes (:data:`GROUPS`, NaN = nodata) after checking the values.

    Raises :class:`DataError` for non-integer classes or many codes outside the legend; returns warnings for a
    small share of unexplained codes (treated as nodata, so affected counties lose coverage and go to review).
    """
    valid = np.isfinite(data)
    codes, counts = np.unique(data[valid], return_counts=True)
    warnings = check_codes(codes, counts.astype(float), legend, source)
    return group_of(data, legend), warnings


def dem_metres(data: np.ndarray, source: str, unit: str | None = None) -> tuple[np.ndarray, list[str]]:
    """Elevations in metres: undeclared fills removed, feet converted, values checked for plausibility."""
    warnings: list[str] = []
    out = np.array(data, dtype=float, copy=True)
    fill = np.isin(out, DEM_FILLS) | (out < -1e30)
    if fill.any():
        vals = sorted(set(out[fill].tolist()))[:3]
        warnings.append(f"DEM {source}: {int(fill.sum()):,} cells hold the fill value {', '.join(f'{v:g}' for v in vals)}"
                        " without a declared nodata; they are treated as nodata")
        out[fill] = np.nan
    if unit and unit.strip().lower() in FEET:
        out *= 0.3048
        warnings.append(f"DEM {source}: band unit is {unit}; elevations converted to metres")
    lo, hi = DEM_RANGE_M
    finite = out[np.isfinite(out)]
    if finite.size and (finite.min() < lo or finite.max() > hi):
        raise DataError(f"DEM {source}: elevations from {finite.min():,.0f} to {finite.max():,.0f} are not "
                        f"plausible metres ({lo:,.0f} to {hi:,.0f}). Declare the raster's nodata value "
                        "(gdal_edit.py -a_nodata), or its unit if it is not metres (gdal_edit.py -units ft).")
    return out, warnings
