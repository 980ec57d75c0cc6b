"""PostGIS in and out, against a real throw-away PostgreSQL + PostGIS cluster (``pg`` in conftest.py)."""
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from layers import pgwrite, vector
from tests.conftest import PG_PASSWORD, SAMPLE, run_cli
from zoning.errors import DataError

LINES = ("red_line", "farmland", "urban_boundary")


def _table(pg, name: str, **params) -> str:
    return pg.uri(table=f"sample.{name}", **params)


def _check_args(source) -> list[str]:
    return [a for k in LINES for a in (f"--{k.replace('_', '-')}", source(k))] + \
        ["--construction", source("construction"), "--counties", source("counties"), "--baseline",
         source("baseline")]


def _files(name: str) -> str:
    return str(SAMPLE / f"{name}.gpkg")


def _same_tables(a: Path, b: Path) -> dict:
    """Every layer of two GeoPackages row for row, in order: the same values and geometries."""
    counts = {}
    assert sorted(n for n, _ in pyogrio.list_layers(a) if n not in ("zoning_run", "layer_styles")) == \
        sorted(n for n, _ in pyogrio.list_layers(b) if n not in ("zoning_run", "layer_styles"))
    for name, gtype in pyogrio.list_layers(a):
        if name in ("zoning_run", "layer_styles"):
            continue
        x, y = pyogrio.read_dataframe(a, layer=name), pyogrio.read_dataframe(b, layer=name)
        if gtype:
            assert x.geometry.geom_equals_exact(y.geometry, 0).all(), name
            x, y = x.drop(columns="geometry"), y.drop(columns="geometry")
        pd.testing.assert_frame_equal(pd.DataFrame(x), pd.DataFrame(y), check_dtype=False, obj=name)
        counts[name] = len(x)
    return counts


@pytest.fixture(scope="module")
def runs(pg, tmp_path_factory):
    """The sample's check from PostGIS into a schema, and the same from GeoPackages into a GeoPackage."""
    tmp = tmp_path_factory.mktemp("pg")
    db = run_cli("check", *_check_args(lambda k: _table(pg, k)), "-o", pg.uri(schema="check_2024"),
                 "--report", str(tmp / "report"))
    files = run_cli("check", *_check_args(_files), "-o", str(tmp / "files.gpkg"))
    assert db.returncode == 0 and files.returncode == 0, db.stderr + files.stderr
    back = pgwrite.fetch(pg.uri(schema="check_2024"), tmp / "back.gpkg")
    return {"db": db, "files": tmp / "files.gpkg", "back": back, "tmp": tmp}


def test_the_same_check_from_and_into_postgis_gives_the_same_tables(pg, runs):
    counts = _same_tables(runs["files"], runs["back"])
    assert counts["violations"] == 1150 and counts["parcels"] == 3002 and counts["conflicts"] == 17
    assert (runs["tmp"] / "report" / "report.xlsx").exists()  # the reports stream from the run's GeoPackage
    tables = {r[0] for r in pg.sql("SELECT table_name FROM information_schema.tables "
                                   "WHERE table_schema = 'check_2024'")}
    assert tables == {"conflicts", "violations", "parcels", "county_summary", "zoning_run"}


def test_published_tables_have_keys_indexes_comments_and_qgis_styles(pg, runs):
    pk = pg.sql("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = 'check_2024' AND i.indisprimary")[0][0]
    gist = pg.sql("SELECT count(*) FROM pg_indexes WHERE schemaname = 'check_2024' AND indexdef LIKE '%gist%'")[0][0]
    assert pk == 5 and gist == 3
    srid = pg.sql("SELECT Find_SRID('check_2024', 'violations', 'geom')")[0][0]
    assert srid == 4490
    comment = pg.sql("SELECT col_description('check_2024.violations'::regclass, a.attnum) FROM pg_attribute a "
                     "WHERE a.attrelid = 'check_2024.violations'::regclass AND a.attname = 'area_mu'")[0][0]
    assert "亩" in comment
    styles = dict(pg.sql("SELECT f_table_name, useasdefault FROM public.layer_styles "
                         "WHERE f_table_schema = 'check_2024'"))
    assert set(styles) == {"conflicts", "violations", "parcels", "county_summary"} and all(styles.values())


def test_qgis_opens_the_tables_with_their_default_styles(pg, runs):
    """Real QGIS (python3-qgis, headless) through its postgres provider, as a GIS user adds the tables."""
    if not Path("/usr/lib/python3/dist-packages/qgis").exists():
        pytest.skip("python3-qgis is not installed")
    conninfo = f"dbname='gis' host=127.0.0.1 port={pg.port} user='postgres' password='{PG_PASSWORD}' sslmode=disable"
    probe = Path(__file__).with_name("qgis_probe.py")
    files = subprocess.run(["/usr/bin/python3", str(probe), str(runs["files"]), "violations", "conflicts"],
                           capture_output=True, text=True, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    db = subprocess.run(["/usr/bin/python3", str(probe), f"postgres:{conninfo}:check_2024", "violations",
                         "conflicts"], capture_output=True, text=True,
                        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    a, b = json.loads(files.stdout.strip().splitlines()[-1]), json.loads(db.stdout.strip().splitlines()[-1])
    for layer in ("violations", "conflicts"):
        assert b[layer]["valid"] and b[layer]["count"] == a[layer]["count"] > 0
        assert b[layer]["crs"] == "EPSG:4490"
        assert (b[layer]["renderer"], b[layer]["attr"], b[layer]["categories"]) == \
            (a[layer]["renderer"], a[layer]["attr"], a[layer]["categories"]) and a[layer]["categories"]


def test_the_password_is_never_shown(pg, runs):
    assert PG_PASSWORD not in runs["db"].stdout + runs["db"].stderr
    meta = pg.sql("SELECT string_agg(value, ' ') FROM check_2024.zoning_run")[0][0]
    assert "postgres@127.0.0.1" in meta and PG_PASSWORD not in meta  # the inputs named, without the password
    for f in (runs["tmp"] / "report").iterdir():
        assert PG_PASSWORD.encode() not in f.read_bytes(), f.name


def test_a_schema_is_replaced_only_with_overwrite_and_only_when_zoning_wrote_it(pg, tmp_path):
    args = _check_args(lambda k: _table(pg, k))
    again = run_cli("check", *args, "-o", pg.uri(schema="check_2024"))
    assert again.returncode == 4 and "--overwrite" in again.stderr
    pg.sql("CREATE SCHEMA IF NOT EXISTS theirs", "CREATE TABLE IF NOT EXISTS theirs.plan (id int)")
    theirs = run_cli("check", *args, "-o", pg.uri(schema="theirs"), "--overwrite")
    assert theirs.returncode == 4 and "did not write" in theirs.stderr
    assert pg.sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'theirs'")[0][0] == 1
    before = pg.sql("SELECT count(*) FROM check_2024.violations")[0][0]
    # a run that fails midway (a parcel that is a line) leaves the schema as it was, and no new schema behind
    bad = gpd.read_file(SAMPLE / "construction.gpkg")
    bad.loc[7, "geometry"] = shapely.LineString([(104, 30), (104.01, 30.01)])
    pg.load("sample.bad_construction", bad)
    failed = run_cli("check", *args[:-6], "--construction", _table(pg, "bad_construction"), "-o",
                     pg.uri(schema="check_2024"), "--overwrite")
    assert failed.returncode == 1 and "LineString" in failed.stderr
    assert pg.sql("SELECT count(*) FROM check_2024.violations")[0][0] == before
    assert not pg.sql("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'zoning_new%'")


def test_two_runs_on_one_schema_are_kept_apart(pg):
    import adbc_driver_postgresql.dbapi as dbapi

    with dbapi.connect(pg.uri(), autocommit=True) as con, con.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(hashtext('zoning:locked'))")  # another run holds the schema
        r = run_cli("check", *_check_args(lambda k: _table(pg, k)), "-o", pg.uri(schema="locked"))
    assert r.returncode == 4 and "another zoning run" in r.stderr
    assert not pg.sql("SELECT 1 FROM pg_namespace WHERE nspname = 'locked'")


def test_classify_compare_and_map_take_postgis(pg, tmp_path):
    rasters = ["--raster", f"landcover={SAMPLE / 'landcover.tif'}", "--raster", f"dem={SAMPLE / 'dem.tif'}"]
    db = run_cli("classify", _table(pg, "counties"), *rasters, "-o", pg.uri(schema="zones_2026"))
    files = run_cli("classify", _files("counties"), *rasters, "-o", str(tmp_path / "zones.gpkg"))
    assert db.returncode == 0 and files.returncode == 0, db.stderr
    _same_tables(tmp_path / "zones.gpkg", pgwrite.fetch(pg.uri(schema="zones_2026"), tmp_path / "back.gpkg"))
    cmp = run_cli("compare", pg.uri(table="zones_2026.zones"), "--reference", str(SAMPLE / "designations.csv"), "-o",
                  pg.uri(schema="comparison_2026"))
    assert cmp.returncode == 0, cmp.stderr
    assert pg.sql("SELECT count(*) FROM comparison_2026.comparison")[0][0] == 183
    m = run_cli("map", pg.uri(schema="zones_2026"), "-o", str(tmp_path / "map.html"))
    assert m.returncode == 0, m.stderr
    assert "城镇化地区" in (tmp_path / "map.html").read_text(encoding="utf-8")


def test_previous_run_read_back_from_its_schema(pg, runs, tmp_path):
    """Year on year with the earlier run in the database: the same as with its GeoPackage."""
    args = _check_args(lambda k: _table(pg, k))
    db = run_cli("check", *args, "--previous", pg.uri(schema="check_2024"), "-o", str(tmp_path / "a.gpkg"))
    files = run_cli("check", *args, "--previous", str(runs["back"]), "-o", str(tmp_path / "b.gpkg"))
    assert db.returncode == 0 and files.returncode == 0, db.stderr + files.stderr
    counts = _same_tables(tmp_path / "a.gpkg", tmp_path / "b.gpkg")
    assert counts["violations"] == 1150


def test_parts_read_by_key_and_extent_on_a_cluster_equal_one_process(pg, tmp_path):
    from tests.conftest import assert_same_outputs

    args = _check_args(lambda k: _table(pg, k))
    one = run_cli("check", *args, "-o", str(tmp_path / "one.gpkg"))
    two = run_cli("check", *args, "--cluster", "local:2", "-o", str(tmp_path / "two.gpkg"))
    assert one.returncode == 0 and two.returncode == 0, two.stderr
    counts = assert_same_outputs(tmp_path / "one.gpkg", tmp_path / "two.gpkg")
    assert counts["violations"] == 1150


# ---------------------------------------------------------------------------------------------------------------
# bad input: a clear message naming host, database and table, never the password, and nothing written


def _refused(r, code: int, *words: str) -> None:
    assert r.returncode == code, r.stderr
    for w in words:
        assert w in r.stderr, (w, r.stderr)
    assert PG_PASSWORD not in r.stderr + r.stdout


def _check_with(pg, tmp_path, red_line: str):
    args = _check_args(lambda k: _table(pg, k))
    args[args.index("--red-line") + 1] = red_line
    out = tmp_path / "out.gpkg"
    out.unlink(missing_ok=True)
    r = run_cli("check", *args, "-o", str(out))
    assert out.exists() == (r.returncode == 0)
    return r


def test_an_unreachable_server_is_answered_quickly(pg, tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.monotonic()
    r = _check_with(pg, tmp_path, f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:{port}/gis?table=sample.red_line")
    assert time.monotonic() - t < 30
    _refused(r, 1, f"127.0.0.1:{port}", "'gis'", "table=sample.red_line", "reachable")


@pytest.mark.parametrize("case, words", [
    ("password", ["password authentication failed", "'gis'"]),
    ("database", ["'nowhere'", "does not exist"]),
    ("schema", ["schema 'nowhere' does not exist"]),
    ("table", ["table 'nothing' does not exist", "sample.red_line"]),
    ("no postgis", ["'plain' has no PostGIS", "CREATE EXTENSION postgis"]),
])
def test_wrong_connections_and_names(pg, tmp_path, case, words):
    uri = {"password": pg.uri(password="wrong", table="sample.red_line"),
           "database": pg.uri(db="nowhere", table="sample.red_line"),
           "schema": pg.uri(table="nowhere.red_line"),
           "table": pg.uri(table="sample.nothing"),
           "no postgis": pg.uri(db="plain", table="public.red_line")}[case]
    _refused(_check_with(pg, tmp_path, uri), 1, *words)


def test_geometry_columns_and_srids_that_cannot_be_used(pg, tmp_path):
    pg.sql("CREATE TABLE IF NOT EXISTS sample.no_geom (id text)",
           "CREATE TABLE IF NOT EXISTS sample.two_geoms AS SELECT id, geom AS a, geom AS b FROM sample.red_line",
           "CREATE TABLE IF NOT EXISTS sample.srid0 AS SELECT id, ST_SetSRID(geom, 0) AS geom FROM sample.red_line",
           "CREATE TABLE IF NOT EXISTS sample.srid_unknown AS SELECT id, ST_SetSRID(geom, 990001) AS geom "
           "FROM sample.red_line")
    _refused(_check_with(pg, tmp_path, _table(pg, "no_geom")), 1, "no geometry column")
    _refused(_check_with(pg, tmp_path, _table(pg, "two_geoms")), 1, "several geometry columns (a, b)",
             "&geometry=a")
    r = _check_with(pg, tmp_path, _table(pg, "two_geoms", geometry="b"))
    assert r.returncode == 0, r.stderr  # the named one is taken
    _refused(_check_with(pg, tmp_path, _table(pg, "srid0")), 1, "has no CRS", "--crs")
    _refused(_check_with(pg, tmp_path, _table(pg, "srid_unknown")), 1, "SRID 990001", "spatial_ref_sys")


def test_an_output_schema_the_user_may_not_create(pg, tmp_path):
    r = run_cli("check", *_check_args(lambda k: _table(pg, k)), "-o",
                pg.uri(user="reader", schema="mine"))
    _refused(r, 4, "'reader' may not create schemas", "GRANT CREATE")


def test_the_connection_dropped_mid_read(pg):
    """The server ends the session while parcels stream in: a clear error, not a partial layer."""
    pg.sql("CREATE TABLE IF NOT EXISTS sample.many AS SELECT g AS fid, 'P' || g AS id, "
           "ST_SetSRID(ST_Buffer(ST_MakePoint(104 + (g % 1000) * 0.001, 30 + (g / 1000) * 0.001), 0.0004), 4490) "
           "AS geom FROM generate_series(1, 300000) g")
    chunks = vector.iter_vector(pg.uri(table="sample.many"), 1000, role="construction")
    first = next(chunks)
    assert len(first) == 1000
    killer = threading.Thread(target=pg.sql, args=(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'zoning'",))
    killer.start()
    killer.join()
    with pytest.raises(DataError, match="reading stopped") as err:
        for _ in chunks:
            pass
    assert PG_PASSWORD not in str(err.value) and "sample.many" in str(err.value)


def test_a_project_file_reads_its_layers_from_postgis(pg, tmp_path):
    inputs = {k: _table(pg, k) for k in (*LINES, "construction", "counties")}
    inputs.update(landcover=str(SAMPLE / "landcover.tif"), dem=str(SAMPLE / "dem.tif"))
    project = tmp_path / "project.toml"
    project.write_text("[project]\nname = \"PostGIS\"\n[inputs]\n" +
                       "".join(f'{k} = "{v}"\n' for k, v in inputs.items()) +
                       "[options]\nsensitivity = 0\nbasemap = \"none\"\n", encoding="utf-8")
    r = run_cli("run", str(project), "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert len(pyogrio.read_dataframe(tmp_path / "out" / "zoning.gpkg", layer="violations")) == 1150
    for name in ("run.json", "zoning.log"):
        text = (tmp_path / "out" / name).read_text(encoding="utf-8")
        assert "table=sample.red_line" in text and PG_PASSWORD not in text, name


def test_a_service_file_entry_names_host_database_user_and_password(pg, tmp_path):
    """``service=NAME``: libpq takes the connection from pg_service.conf (here through PGSERVICEFILE)."""
    conf = tmp_path / "pg_service.conf"
    conf.write_text(f"[onemap]\nhost=127.0.0.1\nport={pg.port}\ndbname=gis\nuser=postgres\npassword={PG_PASSWORD}\n")
    args = _check_args(lambda k: f"postgresql:///?service=onemap&table=sample.{k}")
    r = run_cli("check", *args, "-o", str(tmp_path / "out.gpkg"), env={"PGSERVICEFILE": str(conf)})
    assert r.returncode == 0, r.stderr
    assert len(pyogrio.read_dataframe(tmp_path / "out.gpkg", layer="violations")) == 1150
    assert "service=onemap" in r.stderr and PG_PASSWORD not in r.stderr + r.stdout
    missing = run_cli("check", *args, "-o", str(tmp_path / "no.gpkg"), env={"PGSERVICEFILE": str(tmp_path / "x")})
    assert missing.returncode == 1 and "onemap" in missing.stderr and not (tmp_path / "no.gpkg").exists()


def test_duplicate_parcel_ids_in_different_chunks_of_a_table_are_named(pg, tmp_path):
    parcels = gpd.read_file(SAMPLE / "construction.gpkg")
    parcels.loc[len(parcels) - 1, "id"] = parcels.loc[0, "id"]  # 3,001 rows apart: in different chunks
    pg.load("sample.dup_construction", parcels, key=None)  # no integer key: the ids are read without one
    rules = tmp_path / "rules.toml"
    rules.write_text("[rules]\nchunk_size = 250\n")
    args = _check_args(lambda k: _table(pg, k))
    args[args.index("--construction") + 1] = _table(pg, "dup_construction")
    r = run_cli("check", *args, "--rules", str(rules), "-o", str(tmp_path / "out.gpkg"))
    _refused(r, 1, "duplicate ids", parcels.loc[0, "id"], "table=sample.dup_construction")
    assert not (tmp_path / "out.gpkg").exists()
