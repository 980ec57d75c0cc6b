"""`zoning classify --quota` on the Sichuan sample, through the real command: moves and their reasons, locks,
the run record, infeasible and malformed quota files refused with nothing written."""
import pyogrio
import pytest

from tests.conftest import SAMPLE, run_cli

RASTERS = ["--raster", f"landcover={SAMPLE / 'landcover.tif'}", "--raster", f"dem={SAMPLE / 'dem.tif'}"]
QUOTA = """[[constraint]]
zone = "ecological"
measure = "land"
min = 0.85
group = "province"

[[constraint]]
zone = "urbanization"
measure = "units"
max = 0.30
"""


def _classify(tmp_path, quota_text: str | None, name="z.gpkg", extra=()):
    args = ["classify", str(SAMPLE / "counties.gpkg"), *RASTERS, "--attributes", str(SAMPLE / "stats.csv"),
            "-o", str(tmp_path / name), *extra]
    if quota_text is not None:
        (tmp_path / "quota.toml").write_text(quota_text, encoding="utf-8")
        args += ["--quota", str(tmp_path / "quota.toml")]
    return run_cli(*args)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    d = tmp_path_factory.mktemp("plain")
    assert _classify(d, None).returncode == 0
    return pyogrio.read_dataframe(d / "z.gpkg", layer="zones", read_geometry=False).set_index("county_id")


def test_quota_moves_counties_at_least_cost_and_says_why(tmp_path, plain):
    (tmp_path / "lock.csv").write_text("county_id,zone\n510104,城镇化地区\n510185,urbanization\n", encoding="utf-8")
    r = _classify(tmp_path, 'lock = "lock.csv"\n' + QUOTA)
    assert r.returncode == 0, r.stderr
    z = pyogrio.read_dataframe(tmp_path / "z.gpkg", layer="zones", read_geometry=False).set_index("county_id")
    assert (z["zone_unconstrained"] == plain.loc[z.index, "zone"]).all()  # the model's own answer kept
    moved = z[z["moved_by_quota"]]
    assert len(moved) > 0 and (moved["zone"] != moved["zone_unconstrained"]).all()
    assert (z.loc[~z["moved_by_quota"], "quota_cost"] == 0).all() and (moved["quota_cost"] >= 0).all()
    assert z.loc["510185", "zone"] == "urbanization" and z.loc["510104", "zone"] == "urbanization"  # locked
    land = z.groupby("zone")["area_km2"].sum() / z["area_km2"].sum()
    assert land["ecological"] >= 0.85 - 1e-6 and (z["zone"] == "urbanization").mean() <= 0.30 + 1e-9
    eco = moved[moved["zone"] == "ecological"]
    assert eco["reason"].str.contains("配额调整为重点生态功能区 moved to ecological to meet").all()
    assert eco["reason"].str.contains(r"ecological land ≥ 85% \(each province\) \(四川 Sichuan\)").any()
    # the score difference is the one the model's scores give
    i = moved.index[0]
    assert moved.loc[i, "quota_cost"] == pytest.approx(abs(plain.loc[i, f"score_{plain.loc[i, 'zone']}"] -
                                                           plain.loc[i, f"score_{moved.loc[i, 'zone']}"]))
    assert "quota" in r.stdout and "moves, total score difference" in r.stdout and "四川 Sichuan" in r.stdout
    assert f"{len(moved)} moves" in r.stdout


def test_an_infeasible_quota_is_named_and_nothing_is_written(tmp_path):
    text = QUOTA.replace("min = 0.85", "min = 0.95") + ('[[constraint]]\nzone = "grain_production"\n'
                                                        'measure = "land"\nmin = 0.10\n')
    r = _classify(tmp_path, text)
    assert r.returncode == 1, r.stderr
    assert "cannot hold together" in r.stderr and "ecological land ≥ 95%" in r.stderr, r.stderr
    assert "reaches at most" in r.stderr and not (tmp_path / "z.gpkg").exists()


def test_a_malformed_quota_file_is_refused_before_any_work(tmp_path):
    r = _classify(tmp_path, QUOTA.replace('measure = "land"', 'measure = "area"'))
    assert r.returncode == 2 and "constraint[1].measure: expected one of land, units, population" in r.stderr
    assert "land cover" not in r.stderr and not (tmp_path / "z.gpkg").exists()


def test_a_project_names_its_quota_file(tmp_path):
    import shutil

    for f in SAMPLE.iterdir():
        if f.is_file():
            shutil.copy(f, tmp_path / f.name)
    project = tmp_path / "project.toml"
    project.write_text(project.read_text(encoding="utf-8").replace("[options]", '[options]\nquota = "quota.toml"'),
                       encoding="utf-8")
    r = run_cli("-q", "run", str(project), "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    import json

    run = json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))
    assert run["quota"]["moves"] > 0 and run["quota"]["status"] == "Optimal"
    assert run["quota"]["constraints"][0]["achieved"]["四川 Sichuan"] >= 0.85 - 1e-6
    z = pyogrio.read_dataframe(tmp_path / "out" / "zoning.gpkg", layer="zones", read_geometry=False)
    assert int(z["moved_by_quota"].sum()) == run["quota"]["moves"]
    assert "moves, total score difference" in (tmp_path / "out" / "zoning.log").read_text(encoding="utf-8")
