"""The GeoPackage writer: chunks spooled and written in one pass, and two large layers written at once (the second
in a child process, then merged): the result reads back whole, its R-tree answers bbox queries, GDAL validates it."""
import os
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from layers import gpkg

VALIDATE = Path("/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_gpkg.py")


def _chunks(n, k, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(100, 110, n), rng.uniform(25, 35, n)
    g = gpd.GeoDataFrame({"violation_id": [f"v{seed}-{i}" for i in range(n)], "area_m2": rng.uniform(1, 9, n)},
                         geometry=shapely.box(x, y, x + 0.01, y + 0.01), crs=4490)
    return [g.iloc[i:i + k] for i in range(0, n, k)]


@pytest.mark.parametrize("parallel_rows,stream_rows", [(0, 10**9), (10**9, 10**9), (10**9, 1)],
                         ids=["spooled, second in a child", "spooled, one after the other", "streamed to children"])
def test_two_spooled_layers_in_one_pass_or_at_once(tmp_path, monkeypatch, parallel_rows, stream_rows):
    monkeypatch.setattr(gpkg, "PARALLEL_ROWS", parallel_rows)
    monkeypatch.setattr(gpkg, "STREAM_ROWS", stream_rows)
    path = tmp_path / "o.gpkg"
    w = gpkg.GpkgWriter(path)
    a, b = _chunks(3000, 700, 1), _chunks(2000, 700, 2)
    for ca, cb in zip(a, b + [b[0].iloc[:0]] * 3):
        w.append("violations", ca)
        w.append("parcels", cb)
    if stream_rows == 1:  # one child writes the GeoPackage itself, the other a side file merged at the end
        assert [sp.direct for sp in w._spools.values()] == [True, False]
    w.write("county_summary", gpd.pd.DataFrame({"county_id": ["TOTAL"], "count": [5000]}))
    w.finish({"tool": "zoning"}, {})
    assert not list(tmp_path.glob("*.spool*"))  # no side file or spool left behind
    for name, chunks in (("violations", a), ("parcels", b)):
        got = gpd.read_file(path, layer=name)
        want = gpd.GeoDataFrame(gpd.pd.concat(chunks, ignore_index=True), crs=4490)
        assert got["violation_id"].tolist() == want["violation_id"].tolist()
        assert (got.geometry.geom_type == "MultiPolygon").all()
        assert shapely.equals(got.geometry.values, want.geometry.values).all()
        # the R-tree answers like a brute-force intersection
        box = (103.0, 28.0, 105.0, 30.0)
        hit = pyogrio.read_dataframe(path, layer=name, bbox=box)
        brute = want[want.intersects(shapely.box(*box))]
        assert sorted(hit["violation_id"]) == sorted(brute["violation_id"])
    assert pyogrio.read_info(path, layer="parcels")["features"] == 2000
    if VALIDATE.exists() or os.environ.get("CI"):
        r = subprocess.run(["/usr/bin/python3", str(VALIDATE), str(path)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


def test_a_failed_run_stops_the_streaming_children_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(gpkg, "STREAM_ROWS", 1)
    path = tmp_path / "o.gpkg"
    w = gpkg.GpkgWriter(path)
    for ca, cb in zip(_chunks(3000, 700, 1), _chunks(3000, 700, 2)):
        w.append("violations", ca)
        w.append("parcels", cb)
    procs = [sp.proc for sp in w._spools.values()]
    w.discard()  # what write_check does when the check fails
    assert all(p.poll() is not None for p in procs)
    assert not list(tmp_path.glob("*.spool*"))
