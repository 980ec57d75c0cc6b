"""The classification model as data: load a TOML model, validate every key, report all problems at once.

One spec (``SCHEMA`` plus the checks below) drives validation, ``zoning model show`` and the docs.
"""
from __future__ import annotations

import copy
import hashlib
import tomllib
from dataclasses import dataclass
from importlib import resources

from . import expr
from .errors import ConfigError

ZONES = ("urbanization", "grain_production", "ecological")
ADMIN_TYPES = ("DISTRICT", "CITY", "COUNTY", "FOREST")
INDICATORS = {
    "built_up_share": ("Built-up land share", "建设用地占比"),
    "cropland_share": ("Cropland share (12 + ½·14)", "耕地占比"),
    "ecological_share": ("Ecological land share", "生态用地占比"),
    "barren_share": ("Barren land share", "裸地占比"),
    "water_share": ("Water share", "水域占比"),
    "elevation_mean": ("Mean elevation (m)", "平均海拔(米)"),
    "relief": ("Relief (m)", "地形起伏度(米)"),
    "steep_share": ("Steep land share", "陡坡地占比"),
    "area_km2": ("County area (km²)", "面积(平方公里)"),
    "pop_density": ("Population density (persons/km²)", "人口密度(人/平方公里)"),
    "gdp_per_capita_ratio": ("GDP per capita ÷ national", "人均GDP与全国比"),
    "grain_ratio": ("Grain output per km² ÷ median", "地均粮食产量比"),
    "urbanization_rate": ("Urbanization rate (%)", "城镇化率(%)"),
    "agri_employment_share": ("Employed in agriculture (%)", "农林牧渔业就业占比(%)"),
    "ageing_share": ("Aged 65 and over (%)", "65岁及以上人口占比(%)"),
    "nightlight_density": ("Night-time light per km² (radiance sum ÷ km²)", "夜间灯光强度(每平方公里)"),
    "city_distance_km": ("Distance to the nearest city district (km)", "距市辖区距离(公里)"),
}
SCORE_NAMES = tuple(f"score_{z}" for z in ZONES)
EXPR_NAMES = set(INDICATORS) | set(SCORE_NAMES) | {"admin_type"}

# key: (type, required); a spec that drives validation (types named in messages)
MODEL_KEYS = {
    "id": (str, True), "version": (str, True), "title": (str, False), "title_zh": (str, False),
    "scaling": (str, False), "weighting": (str, False), "review_margin": (float, False),
    "min_cells": (float, False), "max_missing_weight": (float, False),
    "national_gdp_per_capita": (float, False), "top_factors": (int, False), "description": (str, False),
    "coarse_steep_relief_m": (float, False), "min_stability": (float, False),
}
MODEL_DEFAULTS = {"scaling": "breaks", "weighting": "fixed", "review_margin": 0.25, "min_cells": 3.0,
                  "max_missing_weight": 0.5, "national_gdp_per_capita": 70892.0, "top_factors": 3,
                  "coarse_steep_relief_m": 1000.0, "min_stability": 0.6}
TOP_KEYS = {"model", "zones", "functions", "caps", "rules", "tie_break"}


@dataclass
class Term:
    """One weighted term of a function score: an indicator graded by breakpoints, or the max of several."""

    name: str
    weight: float
    parts: list[tuple[str, list[float], bool]]  # (indicator, breaks, descending); >1 part means max_of


@dataclass
class Model:
    raw: dict
    settings: dict
    zones: dict
    functions: dict[str, list[Term]]
    caps: list[dict]
    rules: list[dict]
    tie_break: dict
    source: str = "default"
    sha256: str = ""  # of the model file's text: two files with one id are told apart

    @property
    def id(self) -> str:
        return f"{self.settings['id']}@{self.settings['version']}"

    @property
    def identity(self) -> str:
        """The id, the file's content hash, and a warning when a changed copy keeps the shipped model's id."""
        text = f"{self.id} (sha256 {self.sha256[:12]})"
        shipped = _shipped_sha256()
        if self.source != "default" and self.sha256 and self.sha256 != shipped and \
                self.settings["id"] == "zoning-default":
            text += ", a changed copy of the shipped model: give it an id of its own in [model] id"
        return text

    def indicators(self) -> list[str]:
        """Every indicator the model uses, in first-use order."""
        seen: dict[str, None] = {}
        for terms in self.functions.values():
            for t in terms:
                for ind, _, _ in t.parts:
                    seen.setdefault(ind, None)
        return list(seen)


def default_text() -> str:
    return resources.files("zoning.data").joinpath("default_model.toml").read_text(encoding="utf-8")


def load_default() -> Model:
    return loads(default_text(), source="default")


def _type_ok(value, typ) -> bool:
    if typ is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if typ is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, typ)


def _tname(typ) -> str:
    return {float: "number", int: "integer", str: "string", list: "array", dict: "table", bool: "boolean"}[typ]


def loads(text: str, source: str = "<string>") -> Model:
    """Parse and validate model TOML text; raise :class:`ConfigError` listing every problem with its key path."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    problems: list[str] = []
    model = validate(raw, problems)
    if problems:
        raise ConfigError(f"{source}: {len(problems)} problem(s) in the model", problems)
    model.source = source
    model.sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return model


def _shipped_sha256() -> str:
    return hashlib.sha256(default_text().encode("utf-8")).hexdigest()


def _check_expr(text, path, problems) -> None:
    if not isinstance(text, str):
        problems.append(f"{path}: expected a string expression, got {type(text).__name__}")
        return
    try:
        unknown = expr.names(text) - EXPR_NAMES
    except ValueError as exc:
        problems.append(f"{path}: {exc}")
        return
    for u in sorted(unknown):
        problems.append(f"{path}: unknown name {u!r}; use an indicator ({', '.join(sorted(INDICATORS))}), "
                        f"a score ({', '.join(SCORE_NAMES)}) or admin_type")


def _check_breaks(b, path, problems) -> list[float]:
    if not isinstance(b, list) or len(b) != 4 or not all(_type_ok(x, float) for x in b):
        problems.append(f"{path}: expected 4 numbers (the lower bounds of grades 2, 3, 4 and 5), got {b!r}")
        return []
    if any(b[i] >= b[i + 1] for i in range(3)):
        problems.append(f"{path}: breaks must increase strictly, got {b!r}")
    return [float(x) for x in b]


def _check_part(tbl, path, problems) -> tuple[str, list[float], bool] | None:
    ind = tbl.get("indicator")
    if ind is None:
        problems.append(f"{path}.indicator: missing")
    elif ind not in INDICATORS:
        problems.append(f"{path}.indicator: unknown indicator {ind!r}; known: {', '.join(INDICATORS)}")
    breaks = _check_breaks(tbl.get("breaks"), f"{path}.breaks", problems)
    desc = tbl.get("descending", False)
    if not isinstance(desc, bool):
        problems.append(f"{path}.descending: expected true or false, got {desc!r}")
    return (ind, breaks, bool(desc)) if ind in INDICATORS else None


def validate(raw: dict, problems: list[str]) -> Model:
    """Validate a parsed model dict, appending every problem (``key.path: what is wrong``) to ``problems``."""
    for k in raw:
        if k not in TOP_KEYS:
            problems.append(f"{k}: unknown section; expected one of {', '.join(sorted(TOP_KEYS))}")
    settings = dict(MODEL_DEFAULTS)
    m = raw.get("model")
    if not isinstance(m, dict):
        problems.append("model: missing [model] table")
        m = {}
    for k, v in m.items():
        if k not in MODEL_KEYS:
            problems.append(f"model.{k}: unknown key")
        elif not _type_ok(v, MODEL_KEYS[k][0]):
            problems.append(f"model.{k}: expected {_tname(MODEL_KEYS[k][0])}, got {type(v).__name__} {v!r}")
        else:
            settings[k] = v
    for k, (_, req) in MODEL_KEYS.items():
        if req and k not in m:
            problems.append(f"model.{k}: missing")
    if settings["scaling"] not in ("breaks", "minmax"):
        problems.append(f"model.scaling: expected 'breaks' or 'minmax', got {settings['scaling']!r}")
    if settings["weighting"] not in ("fixed", "entropy"):
        problems.append(f"model.weighting: expected 'fixed' or 'entropy', got {settings['weighting']!r}")

    zones = raw.get("zones", {})
    for z in ZONES:
        zt = zones.get(z) if isinstance(zones, dict) else None
        if not isinstance(zt, dict) or not isinstance(zt.get("label_zh"), str):
            problems.append(f"zones.{z}.label_zh: missing")
    for z in zones if isinstance(zones, dict) else []:
        if z not in ZONES:
            problems.append(f"zones.{z}: unknown zone; zones are {', '.join(ZONES)}")

    functions: dict[str, list[Term]] = {}
    fns = raw.get("functions", {})
    if not isinstance(fns, dict):
        problems.append("functions: expected a table")
        fns = {}
    for f in fns:
        if f not in ZONES:
            problems.append(f"functions.{f}: unknown function; functions are {', '.join(ZONES)}")
    for f in ZONES:
        path = f"functions.{f}"
        ft = fns.get(f)
        if not isinstance(ft, dict) or not isinstance(ft.get("terms"), dict) or not ft["terms"]:
            problems.append(f"{path}.terms: missing; each function needs at least one term")
            continue
        for k in ft:
            if k != "terms":
                problems.append(f"{path}.{k}: unknown key")
        terms = []
        total = 0.0
        for tname, t in ft["terms"].items():
            tp = f"{path}.terms.{tname}"
            if not isinstance(t, dict):
                problems.append(f"{tp}: expected a table")
                continue
            for k in t:
                if k not in ("indicator", "breaks", "descending", "weight", "max_of", "label", "label_zh"):
                    problems.append(f"{tp}.{k}: unknown key")
            w = t.get("weight")
            if not _type_ok(w, float):
                problems.append(f"{tp}.weight: expected number, got {type(w).__name__ if w is not None else 'nothing'}")
                w = 0.0
            elif w < 0:
                problems.append(f"{tp}.weight: must not be negative, got {w}")
            total += float(w)
            parts = []
            if "max_of" in t:
                if not isinstance(t["max_of"], list) or not t["max_of"]:
                    problems.append(f"{tp}.max_of: expected a non-empty array of {{indicator, breaks}} tables")
                else:
                    for i, sub in enumerate(t["max_of"]):
                        if not isinstance(sub, dict):
                            problems.append(f"{tp}.max_of[{i}]: expected a table")
                            continue
                        p = _check_part(sub, f"{tp}.max_of[{i}]", problems)
                        if p:
                            parts.append(p)
            else:
                p = _check_part(t, tp, problems)
                if p:
                    parts.append(p)
            terms.append(Term(tname, float(w), parts))
        if ft["terms"] and abs(total - 1.0) > 1e-6:
            problems.append(f"{path}.terms: weights add up to {total:.6g}, not 1")
        functions[f] = terms

    caps = raw.get("caps", [])
    if not isinstance(caps, list):
        problems.append("caps: expected an array of tables ([[caps]])")
        caps = []
    for i, c in enumerate(caps):
        p = f"caps[{i}]"
        if not isinstance(c, dict):
            problems.append(f"{p}: expected a table")
            continue
        for k in c:
            if k not in ("function", "when", "max_score"):
                problems.append(f"{p}.{k}: unknown key")
        if c.get("function") not in ZONES:
            problems.append(f"{p}.function: expected one of {', '.join(ZONES)}, got {c.get('function')!r}")
        _check_expr(c.get("when"), f"{p}.when", problems)
        if not _type_ok(c.get("max_score"), float):
            problems.append(f"{p}.max_score: expected number")

    rules = raw.get("rules", [])
    if not isinstance(rules, list):
        problems.append("rules: expected an array of tables ([[rules]])")
        rules = []
    ids = set()
    for i, r in enumerate(rules):
        p = f"rules[{i}]"
        if not isinstance(r, dict):
            problems.append(f"{p}: expected a table")
            continue
        for k in r:
            if k not in ("id", "zone", "when", "label", "label_zh"):
                problems.append(f"{p}.{k}: unknown key")
        if not isinstance(r.get("id"), str):
            problems.append(f"{p}.id: missing")
        elif r["id"] in ids or r["id"] in ("highest_score", "tie_break"):
            problems.append(f"{p}.id: {r['id']!r} is used twice or reserved")
        else:
            ids.add(r["id"])
        if r.get("zone") not in ZONES:
            problems.append(f"{p}.zone: expected one of {', '.join(ZONES)}, got {r.get('zone')!r}")
        _check_expr(r.get("when"), f"{p}.when", problems)

    tb = raw.get("tie_break", {})
    if not isinstance(tb, dict):
        problems.append("tie_break: expected a table")
        tb = {}
    tb = {"margin": 0.25, "fallback": list(reversed(ZONES)), "prefer": [], **tb}
    for k in tb:
        if k not in ("margin", "fallback", "prefer"):
            problems.append(f"tie_break.{k}: unknown key")
    if not _type_ok(tb["margin"], float):
        problems.append("tie_break.margin: expected number")
    if not isinstance(tb["fallback"], list) or sorted(tb["fallback"]) != sorted(ZONES):
        problems.append(f"tie_break.fallback: expected all three zones in order of preference, got {tb['fallback']!r}")
    for i, pr in enumerate(tb["prefer"] if isinstance(tb["prefer"], list) else []):
        p = f"tie_break.prefer[{i}]"
        if not isinstance(pr, dict):
            problems.append(f"{p}: expected a table")
            continue
        if pr.get("zone") not in ZONES:
            problems.append(f"{p}.zone: expected one of {', '.join(ZONES)}, got {pr.get('zone')!r}")
        _check_expr(pr.get("when", "1 == 1"), f"{p}.when", problems)
        for k in pr:
            if k not in ("zone", "when"):
                problems.append(f"{p}.{k}: unknown key")
    return Model(raw=raw, settings=settings, zones=zones if isinstance(zones, dict) else {}, functions=functions,
                 caps=caps, rules=rules, tie_break=tb)


def with_functions(model: Model, functions: dict[str, list[Term]]) -> Model:
    """A copy of ``model`` with other terms (used by the sensitivity analysis)."""
    m = copy.copy(model)
    m.functions = functions
    return m
