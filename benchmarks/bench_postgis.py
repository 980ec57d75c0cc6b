"""PostGIS peer for bench_check.py, written the way an expert would.

A throw-away cluster on 127.0.0.1 (Debian `postgresql-15-postgis-3`), started and stopped here. Geometries are
loaded already projected to China Albers (SRID 0, planar areas like the other peers); control polygons are cut with
ST_Subdivide and indexed with GiST; the control pieces are the outer side of each join so their prepared geometry is
reused. The timing covers loading, subdividing, indexing and the three queries.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import _data

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def available() -> bool:
    return (PG_BIN / "initdb").exists() and Path("/usr/share/postgresql/15/extension/postgis.control").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(*cmd: str) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(prefix + list(cmd), check=True, capture_output=True)


class Cluster:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="zoning-pg-"))
        self.port = _free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        _as_postgres(str(PG_BIN / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres", "-A", "trust")
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w", "-o",
                     f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c shared_buffers=512MB "
                     f"-c work_mem=256MB -c max_parallel_workers_per_gather=2 -c fsync=off "
                     f"-c synchronous_commit=off -c full_page_writes=off", "start")

    def stop(self) -> None:
        try:
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def connect(self):
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                               autocommit=True)


def _load(con, table: str, gdf) -> None:
    import shapely

    con.execute(f"CREATE UNLOGGED TABLE {table} (id text, geom geometry)")
    wkb = shapely.to_wkb(gdf.geometry.values, hex=True)
    with con.cursor().copy(f"COPY {table} (id, geom) FROM STDIN") as cp:
        for i, g in zip(gdf["id"].astype(str), wkb):
            cp.write_row((i, g))


SQL_INSIDE = """
SELECT coalesce(sum(ST_Area(CASE WHEN ST_ContainsProperly(c.geom, p.geom) THEN p.geom
                                 ELSE ST_Intersection(p.geom, c.geom) END)), 0)
FROM {ctrl}_sub c JOIN parcels p ON ST_Intersects(c.geom, p.geom)
"""
SQL_OUTSIDE = """
SELECT coalesce(sum(ST_Area(CASE WHEN u.g IS NULL THEN p.geom ELSE ST_Difference(p.geom, u.g) END)), 0)
FROM parcels p LEFT JOIN LATERAL (
    SELECT ST_Union(c.geom) AS g FROM urban_boundary_sub c WHERE ST_Intersects(c.geom, p.geom)) u ON true
"""


def run(n: int) -> dict:
    import geopandas as gpd

    cluster = Cluster()
    try:
        t0 = time.perf_counter()
        con = cluster.connect()
        con.execute("CREATE EXTENSION postgis")
        lines = {k: gpd.read_file(p).to_crs(_data.ALBERS) for k, p in _data.control_lines().items()}
        parcels = gpd.read_file(_data.parcels(n)).to_crs(_data.ALBERS)
        for k, g in lines.items():
            _load(con, k, g)
            con.execute(f"CREATE TABLE {k}_sub AS SELECT id, ST_Subdivide(geom, 256) AS geom FROM {k}")
            con.execute(f"CREATE INDEX ON {k}_sub USING gist (geom)")
        _load(con, "parcels", parcels)
        con.execute("CREATE INDEX ON parcels USING gist (geom)")
        con.execute("ANALYZE")
        out = {}
        for check, ctrl in (("construction_in_red_line", "red_line"), ("construction_on_farmland", "farmland")):
            out[check] = float(con.execute(SQL_INSIDE.format(ctrl=ctrl)).fetchone()[0])
        out["construction_outside_urban_boundary"] = float(con.execute(SQL_OUTSIDE).fetchone()[0])
        con.close()
        out["_seconds_total"] = time.perf_counter() - t0
        return {k: v for k, v in out.items() if not k.startswith("_")}
    finally:
        cluster.stop()
