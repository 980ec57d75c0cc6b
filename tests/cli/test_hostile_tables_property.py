"""A generator of hostile statistics and reference tables — odd encodings, headers, field names, ids and values —
fed to `zoning classify --attributes` and `zoning compare --reference` through the real command: never an internal
error (exit 3) or a traceback, and a refused run leaves the target byte-identical."""
import hashlib
import string
from pathlib import Path

import pandas as pd
import pyogrio
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from cli.main import cli
from tests.conftest import SAMPLE

STATS = pd.read_csv(SAMPLE / "stats.csv", dtype={"county_id": str}).iloc[:60]
REFERENCE = pd.read_csv(SAMPLE / "designations.csv", dtype={"county_id": str})
TRICKY_NAMES = ["county_id", "COUNTY_ID", "adcode", "population", "pop_density", "gdp", "zone", "主体功能区", "",
                " population ", "id", "名称", "a" * 80, "=cmd|' /C calc'!A0", "grain_output"]
TRICKY_VALUES = ["", "-5", "1e400", "NaN", "inf", "一百", "1,234", "  42 ", "=SUM(A1)", "\u0000", "-0", "101%", None]
ENCODINGS = ["utf-8", "utf-8-sig", "gbk", "utf-16", "latin-1"]
SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""


def _hostile(table: pd.DataFrame, names, values, ids, preamble) -> pd.DataFrame:
    t = table.copy()
    for i, name in enumerate(names):
        t[name if name not in t.columns else f"{name}_"] = values[i % len(values)]
    if ids == "numeric":
        t["county_id"] = t["county_id"].astype(int)
    elif ids == "duplicate":
        t.loc[t.index[1], "county_id"] = t["county_id"].iloc[0]
    elif ids == "blank":
        t.loc[t.index[2], "county_id"] = ""
    elif ids == "padded":
        t["county_id"] = " " + t["county_id"].astype(str) + ".0"
    if preamble:
        head = pd.DataFrame([["四川省统计表"] + [""] * (t.shape[1] - 1)], columns=t.columns)
        t = pd.concat([head, pd.DataFrame([t.columns], columns=t.columns), t], ignore_index=True)
        t.columns = [f"c{k}" for k in range(t.shape[1])]
    return t


def _write(t: pd.DataFrame, path: Path, encoding: str) -> bool:
    try:
        if path.suffix == ".xlsx":
            t.to_excel(path, index=False, header=not t.columns[0].startswith("c0"))
        else:
            t.to_csv(path, index=False, encoding=encoding, header=not str(t.columns[0]).startswith("c0"))
    except Exception:  # noqa: BLE001 - a table the encoding cannot hold is not one a user can bring
        return False
    return True


def _run(args: list[str], out: Path) -> None:
    out.write_bytes(b"placeholder")  # not a zoning output: must survive whatever happens
    before = _digest(out)
    res = CliRunner().invoke(cli, [*args, "-o", str(out), "--overwrite"])
    assert res.exit_code in (0, 1, 2, 4), (res.exit_code, res.output)
    assert "Traceback" not in res.output and "Internal error" not in res.output, res.output
    assert _digest(out) == before
    out.unlink()
    res = CliRunner().invoke(cli, ["-q", *args, "-o", str(out)])
    assert res.exit_code in (0, 1, 2, 4), (res.exit_code, res.output)
    assert "Traceback" not in res.output and "Internal error" not in res.output, res.output
    if res.exit_code:
        assert not out.exists() and not [p for p in out.parent.iterdir() if p.name.startswith(".")], res.output
    else:
        assert pyogrio.list_layers(out).size


@pytest.fixture(scope="module")
def zones_gpkg(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("zones") / "zones.gpkg"
    res = CliRunner().invoke(cli, ["-q", "classify", str(SAMPLE / "counties.gpkg"), "--raster",
                                   f"landcover={SAMPLE / 'landcover.tif'}", "-o", str(out)])
    assert res.exit_code == 0, res.output
    return out


hostile = dict(names=st.lists(st.one_of(st.sampled_from(TRICKY_NAMES), st.text(string.ascii_letters + "_人口", min_size=1, max_size=10)),
                              max_size=3, unique=True),
               values=st.lists(st.one_of(st.sampled_from(TRICKY_VALUES), st.floats(allow_nan=True)), min_size=1,
                               max_size=3),
               ids=st.sampled_from(["plain", "numeric", "duplicate", "blank", "padded"]),
               preamble=st.booleans(), encoding=st.sampled_from(ENCODINGS), suffix=st.sampled_from([".csv", ".xlsx"]))


@SETTINGS
@given(**hostile)
def test_hostile_statistics_tables_never_end_in_an_internal_error(tmp_path_factory, names, values, ids, preamble,
                                                                  encoding, suffix):
    d = tmp_path_factory.mktemp("stats")
    table = d / f"stats{suffix}"
    if not _write(_hostile(STATS, names, values, ids, preamble), table, encoding):
        return
    _run(["classify", str(SAMPLE / "counties.gpkg"), "--raster", f"landcover={SAMPLE / 'landcover.tif'}",
          "--attributes", str(table)], d / "zones.gpkg")


@SETTINGS
@given(**hostile, zone=st.sampled_from(["ecological", "生态", "", "重点生态功能区", "ecological ", "3", None]))
def test_hostile_reference_tables_never_end_in_an_internal_error(tmp_path_factory, zones_gpkg, names, values, ids,
                                                                 preamble, encoding, suffix, zone):
    d = tmp_path_factory.mktemp("reference")
    ref = REFERENCE.copy()
    ref.loc[ref.index[:3], "zone"] = zone
    table = d / f"reference{suffix}"
    if not _write(_hostile(ref, names, values, ids, preamble), table, encoding):
        return
    _run(["compare", str(zones_gpkg), "--reference", str(table)], d / "comparison.gpkg")
