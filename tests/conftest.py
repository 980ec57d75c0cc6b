"""Shared fixtures: the bundled sample data, small hand-made layers, and a CLI runner."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from click.testing import CliRunner
from hypothesis import settings


from zoning.areas import gk_zone_crs

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"

# CI runs the examples a developer ran (a random draw once found a hang only on CI's fresh machine);
# `pytest --hypothesis-profile=explore` draws new ones, and `--hypothesis-seed=N` repeats a draw
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("repeatable")


@pytest.fixture(scope="session")
def sample() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def expected() -> dict:
    return json.loads((SAMPLE / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def counties() -> gpd.GeoDataFrame:
    return gpd.read_file(SAMPLE / "counties.gpkg", layer="counties")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the installed ``zoning`` command in a subprocess (the way an officer runs it)."""
    e = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=cwd, capture_output=True, text=True, env=e)


@pytest.fixture
def cli():
    return run_cli


def gk_square(lon: float, lat: float, side: float) -> tuple[shapely.Polygon, object]:
    """A square of ``side`` metres drawn in the CGCS2000 GK zone around (lon, lat); returns (polygon, crs)."""
    from pyproj import Transformer

    crs = gk_zone_crs(lon)
    x, y = Transformer.from_crs(4490, crs, always_xy=True).transform(lon, lat)
    return shapely.box(x, y, x + side, y + side), crs


def assert_same_outputs(a: Path, b: Path, layers=("conflicts", "violations", "parcels", "county_summary",
                                                 "rectified"), rel: float = 1e-6) -> dict:
    """Two GeoPackages hold the same rows (matched by id), text equal, numbers within ``rel``, geometries equal
    within ``rel`` of their area. Returns the row count of each layer compared."""
    import numpy as np
    import pandas as pd
    import pyogrio

    keys = {"conflicts": ["violation_id"], "violations": ["violation_id"], "rectified": ["violation_id"],
            "parcels": ["parcel_id"], "county_summary": ["check_id", "county_id"], "zones": ["county_id"],
            "compensation": ["county_id"]}
    have = {n for n, _ in pyogrio.list_layers(a)}
    assert have == {n for n, _ in pyogrio.list_layers(b)}
    counts = {}
    for layer in [x for x in layers if x in have]:
        x = pyogrio.read_dataframe(a, layer=layer).sort_values(keys[layer]).reset_index(drop=True)
        y = pyogrio.read_dataframe(b, layer=layer).sort_values(keys[layer]).reset_index(drop=True)
        assert list(x.columns) == list(y.columns), layer
        assert len(x) == len(y), (layer, len(x), len(y))
        for c in x.columns:
            if c == "geometry":
                gx, gy = x.geometry.values, y.geometry.values
                d = shapely.area(shapely.symmetric_difference(gx, gy))
                assert (d <= rel * np.maximum(shapely.area(gx), 1e-12)).all(), layer
            elif x[c].dtype.kind == "f":
                np.testing.assert_allclose(x[c].to_numpy(), y[c].to_numpy(), rtol=rel, atol=1e-9, err_msg=c)
            else:
                pd.testing.assert_series_equal(x[c], y[c], obj=f"{layer}.{c}")
        counts[layer] = len(x)
    return counts


def check_files(lines: dict, output, construction=None, counties=None, read=None, extra=None, cluster=None, **kw):
    """``pipeline.run_check`` of a job built from keyword arguments, as the CLI builds it."""
    from zoning.pipeline import CheckJob, ReadOptions, run_check

    job = CheckJob(lines, construction, counties, read=read or ReadOptions(), extra=dict(extra or {}), cluster=cluster)
    return run_check(job, output, **kw)


# ---------------------------------------------------------------------------------------------------------------
# A throw-away PostgreSQL + PostGIS cluster (Debian's packages): initdb + pg_ctl as an unprivileged user, on a free
# port and a private socket folder, removed afterwards. Nothing is mocked.
PG_PASSWORD = "zoning-Secret-42"


def _pg_bin() -> Path | None:
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return bins[-1].parent if bins else None


class PgCluster:
    def __init__(self, base: Path):
        import shutil
        import socket

        self.bin, self.dir = _pg_bin(), base
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        pw = self.dir / "pw"
        pw.write_text(PG_PASSWORD + "\n")
        if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to the postgres user
            for p in (self.dir, pw):
                shutil.chown(p, "postgres", "postgres")
        self._as_owner("initdb", "-D", str(self.dir / "data"), "-U", "postgres", "--auth-local=trust",
                       "--auth-host=scram-sha-256", f"--pwfile={pw}", "-E", "UTF8", "--locale=C.UTF-8")
        self._as_owner("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w", "-o",
                       f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off", "start")

    def _as_owner(self, tool: str, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(prefix + [str(self.bin / tool), *args], check=True, capture_output=True)

    def uri(self, db: str = "gis", user: str = "postgres", password: str | None = PG_PASSWORD, **params) -> str:
        from urllib.parse import urlencode

        auth = f"{user}:{password}@" if password else f"{user}@"
        return f"postgresql://{auth}127.0.0.1:{self.port}/{db}" + (f"?{urlencode(params)}" if params else "")

    def sql(self, *statements: str, db: str = "gis") -> list:
        import adbc_driver_postgresql.dbapi as dbapi

        with dbapi.connect(self.uri(db), autocommit=True) as con, con.cursor() as cur:
            rows = []
            for s in statements:
                cur.execute(s)
                rows = cur.fetchall() if cur.description else []
            return rows

    def load(self, table: str, frame: gpd.GeoDataFrame, db: str = "gis", key: str | None = "fid") -> None:
        """A layer into ``table`` (``schema.name``) as a platform keeps it: typed geometry column, GiST index."""
        import adbc_driver_postgresql.dbapi as dbapi
        import pyarrow as pa

        schema, name = table.split(".")
        srid = frame.crs.to_epsg() if frame.crs is not None else 0
        data = pa.Table.from_pandas(frame.drop(columns=frame.geometry.name), preserve_index=False)
        data = data.append_column("geom", pa.array(shapely.to_wkb(frame.geometry.values), type=pa.binary()))
        with dbapi.connect(self.uri(db)) as con, con.cursor() as cur:
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            cur.execute(f"DROP TABLE IF EXISTS {table}")
            cur.adbc_ingest(name, data, mode="create", db_schema_name=schema)
            cur.execute(f"ALTER TABLE {table} ALTER COLUMN geom TYPE geometry(Geometry, {srid}) "
                        f"USING ST_SetSRID(ST_GeomFromWKB(geom), {srid})")
            if key:
                cur.execute(f"ALTER TABLE {table} ADD COLUMN {key} bigserial PRIMARY KEY")
            cur.execute(f"CREATE INDEX ON {table} USING gist (geom)")
            con.commit()

    def stop(self) -> None:
        import shutil

        try:
            self._as_owner("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg(tmp_path_factory):
    """A PostgreSQL cluster with database ``gis`` (PostGIS and the sample's layers in schema ``sample``), ``plain``
    (no PostGIS) and a role ``reader`` that may not create schemas."""
    if _pg_bin() is None or not list(Path("/usr/share/postgresql").glob("*/extension/postgis.control")):
        pytest.skip("PostgreSQL with PostGIS is not installed (apt-get install postgresql postgresql-postgis)")
    import tempfile

    cluster = PgCluster(Path(tempfile.mkdtemp(prefix="zoning-pg-")))
    try:
        cluster.sql("CREATE DATABASE gis", "CREATE DATABASE plain", db="postgres")
        cluster.sql("CREATE EXTENSION postgis", f"CREATE ROLE reader LOGIN PASSWORD '{PG_PASSWORD}'",
                    "REVOKE CREATE ON DATABASE gis FROM PUBLIC", "GRANT CONNECT ON DATABASE gis TO reader")
        for name in ("red_line", "farmland", "urban_boundary", "construction", "counties", "baseline"):
            cluster.load(f"sample.{name}", gpd.read_file(SAMPLE / f"{name}.gpkg"))
        cluster.sql("GRANT USAGE ON SCHEMA sample TO reader", "GRANT SELECT ON ALL TABLES IN SCHEMA sample TO reader")
        yield cluster
    finally:
        cluster.stop()
