"""Control-line rules as data: shipped defaults overridden key by key by a user TOML file."""
from __future__ import annotations

import copy
import tomllib
from importlib import resources

from . import outputs
from .errors import ConfigError

CHECKS = tuple(outputs.CHECKS)
SEVERITIES = tuple(outputs.SEVERITIES)
# sane ranges: outside them a run would be meaningless or exhaust memory (subdivide_m = 0.01 → terabytes)
LIMITS = {"sliver_m2": (0.0, 1e6), "subdivide_m": (100.0, 1e6), "chunk_size": (1, 10_000_000)}
YEAR_ON_YEAR_LIMITS = {"min_share": (0.01, 1.0), "tolerance_m": (0.0, 100.0)}


def default_text() -> str:
    return resources.files("zoning.data").joinpath("default_rules.toml").read_text(encoding="utf-8")


def defaults() -> dict:
    """The shipped rules; a check registered in the schema but absent from the file runs with its defaults."""
    d = tomllib.loads(default_text())
    for cid, spec in outputs.CHECKS.items():
        d["checks"].setdefault(cid, {"enabled": True, "severity": spec.severity})
    return d


def _merge(base: dict, over: dict, path: str, problems: list[str]) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        p = f"{path}.{k}" if path else k
        if k not in base:
            problems.append(f"{p}: unknown key; known keys here: {', '.join(base)}")
            continue
        b = base[k]
        if isinstance(b, dict):
            if not isinstance(v, dict):
                problems.append(f"{p}: expected a table, got {type(v).__name__}")
            else:
                out[k] = _merge(b, v, p, problems)
        elif isinstance(b, bool):
            if not isinstance(v, bool):
                problems.append(f"{p}: expected true or false, got {v!r}")
            else:
                out[k] = v
        elif isinstance(b, (int, float)):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                problems.append(f"{p}: expected a number, got {type(v).__name__} {v!r}")
            elif isinstance(b, int) and not isinstance(b, bool) and not float(v).is_integer():
                problems.append(f"{p}: expected an integer, got {v!r}")
            else:
                out[k] = type(b)(v)
        elif isinstance(b, str):
            if not isinstance(v, str):
                problems.append(f"{p}: expected a string, got {type(v).__name__} {v!r}")
            else:
                out[k] = v
    return out


def loads(text: str | None, source: str = "<string>") -> dict:
    """Defaults overridden by ``text`` (TOML); raise :class:`ConfigError` listing every bad key."""
    base = defaults()
    if not text:
        return base
    try:
        over = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    problems: list[str] = []
    rules = _merge(base, over, "", problems)
    for name, c in rules["checks"].items():
        for key in ("severity", "critical_severity"):
            if key in c and c[key] not in SEVERITIES:
                problems.append(f"checks.{name}.{key}: expected one of {', '.join(SEVERITIES)}, got {c[key]!r}")
    r = rules["rules"]
    if r["area_method"] not in ("albers", "geodesic"):
        problems.append(f"rules.area_method: expected 'albers' or 'geodesic', got {r['area_method']!r}")
    for key, (lo, hi) in LIMITS.items():
        if not lo <= r[key] <= hi:
            problems.append(f"rules.{key}: must be between {lo:g} and {hi:g}, got {r[key]!r}")
    for key, (lo, hi) in YEAR_ON_YEAR_LIMITS.items():
        if not lo <= rules["year_on_year"][key] <= hi:
            problems.append(f"year_on_year.{key}: must be between {lo:g} and {hi:g}, got {rules['year_on_year'][key]!r}")
    if problems:
        raise ConfigError(f"{source}: {len(problems)} problem(s) in the rules", problems)
    return rules
