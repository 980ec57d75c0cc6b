"""Load the model, the rules and the project file once, and validate every option before any work starts."""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pyproj import CRS
from pyproj.exceptions import CRSError

from layers.postgis import is_uri

from .. import legends, model as model_mod, rasters as raster_kinds, rules as rules_mod
from ..errors import ConfigError, UsageError

BASEMAPS = ("none", "osm", "tianditu")
ID_ROLES = ("red_line", "farmland", "urban_boundary", "construction", "county")


def load_model(path: str | Path | None) -> model_mod.Model:
    """The shipped model, or a model TOML validated with every problem named by key path."""
    if path is None:
        return model_mod.load_default()
    p = Path(path)
    if not p.exists():
        raise UsageError(f"model file not found: {p}")
    try:
        return model_mod.loads(p.read_text(encoding="utf-8"), source=str(p))
    except RecursionError:
        raise ConfigError(f"{p}: an expression is nested too deeply to evaluate; simplify it.") from None


def load_rules(path: str | Path | None) -> dict:
    """The shipped rules overridden key by key by a rules TOML (every bad key named)."""
    if path is None:
        return rules_mod.loads(None, "default rules")
    p = Path(path)
    if not p.exists():
        raise UsageError(f"rules file not found: {p}")
    return rules_mod.loads(p.read_text(encoding="utf-8"), str(p))


def load_legend(spec: str | Path | None) -> legends.Legend:
    """A shipped land-cover legend by name (igbp, esa_worldcover, clcd, globeland30) or a legend TOML file."""
    if spec is None or isinstance(spec, legends.Legend):
        return spec or legends.LEGENDS["igbp"]
    p = Path(spec)
    if p.suffix.lower() == ".toml":
        if not p.exists():
            raise UsageError(f"legend file not found: {p}")
        return legends.load_legend(str(p), p.read_text(encoding="utf-8"))
    return legends.load_legend(str(spec))


def check_crs(value: str | None, where: str = "--crs") -> None:
    if value:
        try:
            CRS.from_user_input(value)
        except CRSError:
            raise UsageError(f"{where}: {value!r} is not a CRS PROJ knows; use e.g. EPSG:4490 (CGCS2000) or "
                             "EPSG:4326.") from None


def check_encoding(value: str | None, where: str = "--encoding") -> None:
    import codecs

    if value:
        try:
            codecs.lookup(value)
        except LookupError:
            raise UsageError(f"{where}: unknown text encoding {value!r}; use e.g. utf-8, gbk or gb18030.") from None


@dataclass
class ReadOptions:
    """How inputs are read: id field per layer (``id_field`` the default for all), CRS for layers without one,
    text encoding."""

    id_field: str | None = None
    ids: dict[str, str | None] = field(default_factory=dict)
    assume_crs: str | None = None
    encoding: str | None = None

    def __post_init__(self) -> None:
        check_crs(self.assume_crs)
        check_encoding(self.encoding)
        unknown = set(self.ids) - set(ID_ROLES)
        if unknown:
            raise UsageError(f"unknown id role(s) {', '.join(sorted(unknown))}; known: {', '.join(ID_ROLES)}")

    def id_for(self, role: str) -> str | None:
        return self.ids.get(role) or self.id_field


def options_of(cls, options: dict, what: str):
    """An options dataclass from keyword options, an unknown name refused with the known ones."""
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise UsageError(f"unknown {what} option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return cls(**options)


# 10⁴ perturbed runs put a county's stability within ±1 % (binomial); more only spends time, and a typing slip
# (2**63) would otherwise run for ever
MAX_SENSITIVITY_RUNS = 10_000
MAX_MEMORY_MB = 1_048_576  # 1 TiB: above any machine's memory, below what the raster readers' cell counts hold


@dataclass(frozen=True)
class ClassifyOptions:
    """How a classification runs: one value per option, the command line's defaults (``zoning classify --help``).

    ``model`` and ``legend`` may be given loaded or by name/path; ``read`` (how inputs are read) is built from
    ``id_field``, ``assume_crs`` and ``encoding`` unless given; ``cluster`` is an address or a connected client.
    """

    attributes: object = None
    model: object = None
    legend: object = None
    id_field: str | None = None
    name_field: str | None = None
    assume_crs: str | None = None
    encoding: str | None = None
    read: ReadOptions | None = None
    header_row: int | None = None
    memory_mb: float = 1024.0
    points: dict | None = None
    default_places: bool = False
    census: bool = True
    sensitivity: int = 0
    spread: float = 0.10
    seed: int = 0
    cluster: object = None
    quota: object = None

    @classmethod
    def of(cls, options: dict) -> "ClassifyOptions":
        return options_of(cls, options, "classification")

    def __post_init__(self) -> None:
        if not 0 <= self.sensitivity <= MAX_SENSITIVITY_RUNS:
            raise UsageError(f"--sensitivity {self.sensitivity}: expected 0 to {MAX_SENSITIVITY_RUNS:,} perturbed runs "
                             "(10,000 already give each county's stability within ±1 %)")
        if not 64 <= self.memory_mb <= MAX_MEMORY_MB:
            raise UsageError(f"--memory-mb {self.memory_mb:g}: expected 64 to {MAX_MEMORY_MB:,} MB")

    def reading(self) -> ReadOptions:
        return self.read or ReadOptions(None, {"county": self.id_field} if self.id_field else {}, self.assume_crs,
                                        self.encoding)


@dataclass
class CheckJob:
    """What a check reads and how, for one process and the cluster alike.

    ``lines``: the red line, farmland and urban boundary (paths or frames); ``counties`` a county layer, read as
    ``county_role`` ("counties", or "zones" for the tool's zones layer); ``zone_of`` the zone of each county id (for
    the ledger); ``extra``: cropland, baseline, previous, landcover, landcover_previous, legend and ledger (False:
    no parcels layer); ``need_lines``: the whole lines are wanted back (reports, the project's layers).
    """

    lines: dict
    construction: object = None
    counties: object = None
    county_role: str = "counties"
    zone_of: dict | None = None
    read: ReadOptions = field(default_factory=ReadOptions)
    rules: dict | None = None
    extra: dict = field(default_factory=dict)
    cluster: object = None
    need_lines: bool = False


# ---------------------------------------------------------------------------------------------------------------
# project files
PROJECT_INPUTS = {"counties": True, **{k.name: k.required for k in raster_kinds.KINDS.values()},
                  "places": False, "attributes": False, "reference": False, "red_line": True, "farmland": True,
                  "urban_boundary": True, "construction": False, "cropland": False, "baseline": False,
                  "previous": False, "landcover_previous": False}
PROJECT_OPTIONS = {"model": str, "rules": str, "id_field": str, "county_id_field": str, "name_field": str,
                   "red_line_id": str, "farmland_id": str, "urban_boundary_id": str, "construction_id": str,
                   "sensitivity": int, "seed": int, "spread": float, "simplify_m": float, "basemap": str,
                   "tianditu_key": str, "crs": str, "encoding": str, "legend": str, "header_row": int,
                   "reference_id_field": str, "reference_zone_field": str,
                   "memory_mb": float, "default_places": bool, "census": bool,
                   "cluster": str, "quota": str, "compensate": bool, "equivalent_value": float, "esv_types": str,
                   "transfer_coefficient": float}


INF = float("inf")
OPTION_RANGES = {"simplify_m": (0, INF), "sensitivity": (0, MAX_SENSITIVITY_RUNS), "spread": (0, 1),
                 "seed": (0, 2**63 - 1), "memory_mb": (64, MAX_MEMORY_MB), "header_row": (1, INF)}


def sample_project() -> Path:
    """The bundled sample project file (installed as package data)."""
    try:
        return Path(str(resources.files("zoning.sample_data").joinpath("project.toml")))
    except ModuleNotFoundError:  # a source checkout that is not installed
        return Path(__file__).resolve().parents[2] / "sample_data" / "project.toml"


@dataclass
class Project:
    name: str
    path: Path
    inputs: dict[str, str]
    options: dict
    model: model_mod.Model
    rules: dict
    read: ReadOptions
    legend: legends.Legend


def _resolve_input(base: Path, v: str) -> tuple[str, bool]:
    if is_uri(v):  # a PostGIS table: checked when it is read
        return v, True
    p, layer = Path(v), None
    if ":" in v and not (base / v).exists() and not Path(v).exists():
        p_str, _, layer = v.rpartition(":")
        p = Path(p_str)
    full = p if p.is_absolute() else base / p
    return (f"{full}:{layer}" if layer else str(full)), full.exists()


def load_project(path: Path) -> Project:
    """Read and validate a project file, the model and rules it names and every option; all problems at once."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"project file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")  # Notepad saves UTF-8 with a byte-order mark
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        hint = ""
        if re.search(r'=\s*"[^"\n]*\\', text):
            hint = (" Windows paths in double quotes need their backslashes doubled (\"D:\\\\data\\\\a.gpkg\"), "
                    "or single quotes ('D:\\data\\a.gpkg'), or forward slashes (\"D:/data/a.gpkg\").")
        raise ConfigError(f"{path}: not valid TOML: {exc}.{hint}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the project file as UTF-8.") from None
    problems = [f"{k}: unknown section; expected project, inputs, options" for k in raw
                if k not in ("project", "inputs", "options")]
    for k in ("project", "inputs", "options"):
        if k in raw and not isinstance(raw[k], dict):
            problems.append(f"{k}: expected a table ([{k}] with keys under it), got {type(raw[k]).__name__} "
                            f"{raw[k]!r}")
            raw[k] = {}
    inputs, opts, base = raw.get("inputs", {}), dict(raw.get("options", {})), path.parent
    resolved = {}
    for k, v in inputs.items():
        if k not in PROJECT_INPUTS:
            problems.append(f"inputs.{k}: unknown input; known: {', '.join(PROJECT_INPUTS)}")
        elif not isinstance(v, str):
            problems.append(f"inputs.{k}: expected a path string")
        elif v:
            resolved[k], ok = _resolve_input(base, v)
            if not ok:
                problems.append(f"inputs.{k}: file not found: {resolved[k]}")
    problems += [f"inputs.{k}: missing (required)" for k, req in PROJECT_INPUTS.items() if req and k not in inputs]
    for k, v in list(opts.items()):
        t = PROJECT_OPTIONS.get(k)
        if t is None:
            problems.append(f"options.{k}: unknown option; known: {', '.join(PROJECT_OPTIONS)}")
        elif not isinstance(v, t) or isinstance(v, bool) and t is not bool:
            if not (t is float and isinstance(v, int) and not isinstance(v, bool)):
                problems.append(f"options.{k}: expected {t.__name__}, got {type(v).__name__} {v!r}")
                del opts[k]  # named once: the checks of its value below would only fail on its type
    if opts.get("basemap", "none") not in BASEMAPS:
        problems.append(f"options.basemap: expected one of {', '.join(BASEMAPS)}, got {opts['basemap']!r}")
    if opts.get("basemap") == "tianditu" and not opts.get("tianditu_key"):
        problems.append("options.tianditu_key: required with basemap = \"tianditu\"")
    for k, (lo, hi) in OPTION_RANGES.items():  # the command line's ranges
        v = opts.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not lo <= v <= hi:
            problems.append(f"options.{k}: must be ≥ {lo}" + (f" and ≤ {hi}" if hi != float("inf") else "") +
                            f", got {v!r}")
    for k, check in (("crs", check_crs), ("encoding", check_encoding)):
        try:
            check(opts.get(k), f"options.{k}")
        except UsageError as exc:
            problems.append(str(exc))
    if isinstance(opts.get("cluster"), str):
        from .cluster import parse_address

        try:
            parse_address(opts["cluster"])
        except UsageError as exc:
            problems.append(f"options.cluster: {str(exc).split(': ', 1)[1]}")
    if isinstance(opts.get("legend"), str) and opts["legend"].lower().endswith(".toml") and \
            not Path(opts["legend"]).is_absolute():
        opts["legend"] = str(base / opts["legend"])
    if opts.get("equivalent_value") is not None:
        from ..compensation import check_equivalent_value

        try:
            check_equivalent_value(opts["equivalent_value"], "options.equivalent_value")
        except ConfigError as exc:
            problems.append(str(exc))
    if isinstance(opts.get("transfer_coefficient"), (int, float)) and not opts["transfer_coefficient"] >= 0:
        problems.append(f"options.transfer_coefficient: must be ≥ 0, got {opts['transfer_coefficient']!r}")
    for k in ("model", "rules", "esv_types", "quota"):
        if isinstance(opts.get(k), str) and opts[k]:
            p = Path(opts[k]) if Path(opts[k]).is_absolute() else base / opts[k]
            if not p.exists():
                problems.append(f"options.{k}: file not found: {p}")
            opts[k] = str(p)
    if problems:
        raise ConfigError(f"{path}: {len(problems)} problem(s) in the project", problems)
    mdl = load_model(opts.get("model") or None)
    rules = load_rules(opts.get("rules") or None)
    legend = load_legend(opts.get("legend") or None)
    ids = {r: opts.get(f"{r}_id") for r in ("red_line", "farmland", "urban_boundary", "construction")}
    ids["county"] = opts.get("county_id_field")
    read = ReadOptions(opts.get("id_field"), {k: v for k, v in ids.items() if v}, opts.get("crs"),
                       opts.get("encoding"))
    return Project(raw.get("project", {}).get("name", path.stem), path, resolved, opts, mdl, rules, read, legend)
