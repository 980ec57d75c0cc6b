"""The quota file (``classify --quota``): its constraints, locks and options, validated with errors naming the key;
and the groups a constraint is held in (all counties, each province, each value of a field)."""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError
from .model import ZONES  # the order of the score columns

MEASURES = {"land": ("land", "土地"), "units": ("counties", "县数"), "population": ("residents", "人口")}
GAP = 1e-4  # default relative gap: the total proven within 0.01 % of the least possible
TOL = 1e-7  # shares within this of a bound count as meeting it (the solver's feasibility tolerance)
PROVINCES = {
    "11": "北京 Beijing", "12": "天津 Tianjin", "13": "河北 Hebei", "14": "山西 Shanxi", "15": "内蒙古 Inner Mongolia",
    "21": "辽宁 Liaoning", "22": "吉林 Jilin", "23": "黑龙江 Heilongjiang", "31": "上海 Shanghai", "32": "江苏 Jiangsu",
    "33": "浙江 Zhejiang", "34": "安徽 Anhui", "35": "福建 Fujian", "36": "江西 Jiangxi", "37": "山东 Shandong",
    "41": "河南 Henan", "42": "湖北 Hubei", "43": "湖南 Hunan", "44": "广东 Guangdong", "45": "广西 Guangxi",
    "46": "海南 Hainan", "50": "重庆 Chongqing", "51": "四川 Sichuan", "52": "贵州 Guizhou", "53": "云南 Yunnan",
    "54": "西藏 Tibet", "61": "陕西 Shaanxi", "62": "甘肃 Gansu", "63": "青海 Qinghai", "64": "宁夏 Ningxia",
    "65": "新疆 Xinjiang", "71": "台湾 Taiwan", "81": "香港 Hong Kong", "82": "澳门 Macao"}


@dataclass(frozen=True)
class Constraint:
    zone: str
    measure: str
    min: float | None
    max: float | None
    group: str = "all"
    name: str = ""

    def label(self, zh: dict | None = None) -> str:
        z = (zh or {}).get(self.zone, self.zone)
        bound = " and ".join(x for x in (f"≥ {self.min:.0%}" if self.min is not None else "",
                                        f"≤ {self.max:.0%}" if self.max is not None else "") if x)
        return self.name or f"{z} {MEASURES[self.measure][0]} {bound}" + \
            ("" if self.group == "all" else f" (each {self.group})")


@dataclass(frozen=True)
class Quota:
    constraints: tuple[Constraint, ...]
    lock: str | None = None  # a table of county ids and zones that must not move
    isolated: bool = True  # False: no county may be the only one of its zone among its neighbours
    max_moves: int | None = None
    source: str = ""
    gap: float = GAP  # the solver's relative optimality gap


def load_quota(text: str, source: str = "quota") -> Quota:
    """A quota file, validated: every problem named by its key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    problems, out = [], []
    for k in raw:
        if k not in ("constraint", "lock", "isolated", "max_moves", "gap"):
            problems.append(f"{k}: unknown key; expected [[constraint]], lock, isolated, max_moves, gap")
    items = raw.get("constraint", [])
    if not isinstance(items, list) or not items:
        problems.append("constraint: at least one [[constraint]] with zone, measure and min and/or max")
        items = []
    for i, c in enumerate(items, 1):
        at = f"constraint[{i}]"
        if not isinstance(c, dict):
            problems.append(f"{at}: expected a table")
            continue
        for k in c:
            if k not in ("zone", "measure", "min", "max", "group", "name"):
                problems.append(f"{at}.{k}: unknown key; expected zone, measure, min, max, group, name")
        if c.get("zone") not in ZONES:
            problems.append(f"{at}.zone: expected one of {', '.join(ZONES)}, got {c.get('zone')!r}")
        if c.get("measure") not in MEASURES:
            problems.append(f"{at}.measure: expected one of {', '.join(MEASURES)}, got {c.get('measure')!r}")
        bounds = {}
        for k in ("min", "max"):
            v = c.get(k)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1 or not math.isfinite(v):
                problems.append(f"{at}.{k}: expected a share from 0 to 1 (0.55 for 55 %), got {v!r}")
            else:
                bounds[k] = float(v)
        if "min" not in c and "max" not in c:
            problems.append(f"{at}: give min and/or max")
        if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
            problems.append(f"{at}: min {bounds['min']} is above max {bounds['max']}")
        group = c.get("group", "all")
        if not isinstance(group, str) or not group:
            problems.append(f"{at}.group: expected all, province or a field of the counties")
        out.append(Constraint(str(c.get("zone")), str(c.get("measure")), bounds.get("min"), bounds.get("max"),
                              str(group), str(c.get("name", ""))))
    if not isinstance(raw.get("isolated", True), bool):
        problems.append(f"isolated: expected true or false, got {raw['isolated']!r}")
    mm = raw.get("max_moves")
    if mm is not None and (isinstance(mm, bool) or not isinstance(mm, int) or mm < 0):
        problems.append(f"max_moves: expected a whole number ≥ 0, got {mm!r}")
    gap = raw.get("gap", GAP)
    if isinstance(gap, bool) or not isinstance(gap, (int, float)) or not 0 <= gap <= 0.1:
        problems.append(f"gap: expected a relative optimality gap from 0 to 0.1 (1e-4 = 0.01 %), got {gap!r}")
    lock = raw.get("lock")
    if lock is not None and not isinstance(lock, str):
        problems.append("lock: expected the path of a table (county_id, zone)")
    if problems:
        raise ConfigError(f"{source}: {len(problems)} problem(s) in the quota file", problems)
    return Quota(tuple(out), lock, raw.get("isolated", True), mm, source, float(gap))


def group_keys(c: Constraint, ids: pd.Series, fields: pd.DataFrame | None) -> np.ndarray:
    """The group of each county for a constraint: one group, the province, or a field's value."""
    if c.group == "all":
        return np.full(len(ids), "all", dtype=object)
    if c.group == "province":
        return ids.astype(str).str[:2].map(lambda p: PROVINCES.get(p, p)).to_numpy(dtype=object)
    if fields is None or c.group not in fields.columns:
        known = ", ".join(str(x) for x in (fields.columns if fields is not None else []))
        raise DataError(f"quota: group {c.group!r} is neither all, province nor a field of the counties "
                        f"(fields: {known})")
    return fields[c.group].astype(str).to_numpy(dtype=object)
