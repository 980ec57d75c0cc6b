"""PostGIS I/O benchmark: `zoning check` reading 10⁶ parcels from PostGIS and writing its findings back, against the
same run on GeoPackage files; and the I/O alone, ADBC (what zoning uses) against psycopg 3's binary COPY and against
geopandas' read_postgis / to_postgis.

A throw-away cluster on 127.0.0.1 (Debian's postgresql + postgis; `bench_postgis.Cluster`), the synthetic Sichuan
control lines and parcels of `bench_check.py` loaded into it first (not timed). Whole processes, wall time and peak
memory (VmHWM); the I/O rows are timed inside one process each.

  python benchmarks/bench_postgis_io.py [--n 1000000] [--repeat 1]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import _data
import bench_classify
import bench_postgis

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench"


def _uri(port: int, **params) -> str:
    from urllib.parse import urlencode

    return f"postgresql://postgres@127.0.0.1:{port}/postgres" + (f"?{urlencode(params)}" if params else "")


def load(cluster, n: int) -> None:
    """The lines and parcels as tables (typed geometry, integer key, GiST), as a platform keeps them."""
    import adbc_driver_postgresql.dbapi as dbapi
    import geopandas as gpd
    import pyarrow as pa
    import shapely

    with dbapi.connect(_uri(cluster.port)) as con, con.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        cur.execute("CREATE SCHEMA IF NOT EXISTS bench")
        for name, path in {**_data.control_lines(), "construction": _data.parcels(n)}.items():
            g = gpd.read_file(path)
            data = pa.Table.from_pandas(g.drop(columns="geometry"), preserve_index=False).append_column(
                "geom", pa.array(shapely.to_wkb(g.geometry.values), type=pa.binary()))
            cur.execute(f"DROP TABLE IF EXISTS bench.{name}")
            cur.adbc_ingest(name, data, mode="create", db_schema_name="bench")
            cur.execute(f"ALTER TABLE bench.{name} ALTER COLUMN geom TYPE geometry(Geometry, 4490) "
                        "USING ST_SetSRID(ST_GeomFromWKB(geom), 4490)")
            cur.execute(f"ALTER TABLE bench.{name} ADD COLUMN fid bigserial PRIMARY KEY")
            cur.execute(f"CREATE INDEX ON bench.{name} USING gist (geom)")
        con.commit()
        cur.execute("ANALYZE")


def check_commands(port: int, n: int, out: Path) -> dict[str, list[str]]:
    lines = _data.control_lines()
    files = [a for k, p in lines.items() for a in (f"--{k.replace('_', '-')}", str(p))] + \
        ["--construction", str(_data.parcels(n))]
    db = [a for k in lines for a in (f"--{k.replace('_', '-')}", _uri(port, table=f"bench.{k}"))] + \
        ["--construction", _uri(port, table="bench.construction")]
    cli = [sys.executable, "-m", "cli", "-q", "check"]
    return {"GeoPackage → GeoPackage": cli + files + ["-o", str(out / "files.gpkg"), "--overwrite"],
            "PostGIS → PostGIS": cli + db + ["-o", _uri(port, schema="findings"), "--overwrite"]}


# ---------------------------------------------------------------------------------------------------------------
# the I/O alone, each in a process of its own (--child NAME): read the parcels, write the findings back


def io_adbc(port: int, findings: Path) -> dict:
    from layers import pgread, pgwrite, postgis

    t = time.perf_counter()
    frame = pgread.read(postgis.parse(_uri(port, table="bench.construction")), "construction")
    read = time.perf_counter() - t
    t = time.perf_counter()
    pgwrite.publish(findings, postgis.parse(_uri(port, schema="io_adbc")), overwrite=True)
    return {"rows": len(frame), "read_s": read, "write_s": time.perf_counter() - t}


def io_psycopg(port: int, findings: Path) -> dict:
    """psycopg 3 binary COPY both ways: rows as Python tuples, geometry as WKB."""
    import geopandas as gpd
    import pandas as pd
    import psycopg
    import pyogrio
    import shapely

    t = time.perf_counter()
    with psycopg.connect(_uri(port)) as con:
        ids, wkbs = [], []
        with con.cursor().copy("COPY (SELECT id, ST_AsBinary(geom) FROM bench.construction ORDER BY fid) "
                               "TO STDOUT (FORMAT BINARY)") as cp:
            cp.set_types(["text", "bytea"])
            for i, w in cp.rows():
                ids.append(i)
                wkbs.append(w)
        frame = gpd.GeoDataFrame({"id": ids}, geometry=shapely.from_wkb(wkbs), crs=4490)
        read = time.perf_counter() - t
        t = time.perf_counter()
        con.execute("DROP SCHEMA IF EXISTS io_psycopg CASCADE")
        con.execute("CREATE SCHEMA io_psycopg")
        for layer in ("violations", "parcels"):
            df = pyogrio.read_dataframe(findings, layer=layer)
            cols = [c for c in df.columns if c != "geometry"]
            con.execute(f"CREATE TABLE io_psycopg.{layer} ({', '.join(f'{c} text' for c in cols)}, geom bytea)")
            wkb = shapely.to_wkb(df.geometry.values)
            values = [[None if pd.isna(v) else str(v) for v in row] for row in df[cols].to_numpy(dtype=object).tolist()]
            with con.cursor().copy(f"COPY io_psycopg.{layer} FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["text"] * len(cols) + ["bytea"])
                for row, g in zip(values, wkb.tolist()):
                    cp.write_row((*row, g))
            con.execute(f"ALTER TABLE io_psycopg.{layer} ALTER COLUMN geom TYPE geometry(MultiPolygon, 4490) "
                        "USING ST_SetSRID(ST_GeomFromWKB(geom), 4490)")
            con.execute(f"CREATE INDEX ON io_psycopg.{layer} USING gist (geom)")
    return {"rows": len(frame), "read_s": read, "write_s": time.perf_counter() - t}


def io_geopandas(port: int, findings: Path) -> dict:
    """geopandas.read_postgis and GeoDataFrame.to_postgis (SQLAlchemy + psycopg)."""
    import geopandas as gpd
    import pyogrio
    from sqlalchemy import create_engine

    engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres")
    t = time.perf_counter()
    frame = gpd.read_postgis("SELECT id, geom FROM bench.construction ORDER BY fid", engine, geom_col="geom")
    read = time.perf_counter() - t
    t = time.perf_counter()
    with engine.begin() as con:
        con.exec_driver_sql("DROP SCHEMA IF EXISTS io_gpd CASCADE")
        con.exec_driver_sql("CREATE SCHEMA io_gpd")
    for layer in ("violations", "parcels"):
        pyogrio.read_dataframe(findings, layer=layer).to_postgis(layer, engine, schema="io_gpd", index=False)
    return {"rows": len(frame), "read_s": read, "write_s": time.perf_counter() - t}


IO = {"ADBC (zoning)": io_adbc, "psycopg 3 binary COPY": io_psycopg, "geopandas read_postgis/to_postgis": io_geopandas}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--child")
    ap.add_argument("--port", type=int)
    ap.add_argument("--findings")
    a = ap.parse_args()
    if a.child:
        print(json.dumps({**IO[a.child](a.port, Path(a.findings)), "peak_mb": _data.peak_mb()}))
        return
    if not bench_postgis.available():
        raise SystemExit("PostgreSQL with PostGIS is not installed (apt-get install postgresql postgresql-postgis)")
    out = Path(os.environ.get("TMPDIR", "/tmp")) / "zoning-bench-pgio"
    out.mkdir(exist_ok=True)
    cluster = bench_postgis.Cluster()
    try:
        print(f"loading {a.n:,} parcels and the control lines into PostGIS", flush=True)
        load(cluster, a.n)
        rows = []
        for name, cmd in check_commands(cluster.port, a.n, out).items():
            res = [bench_classify.measure(cmd) for _ in range(a.repeat)]
            rows.append((name, statistics.median(r[0] for r in res), max(r[1] for r in res)))
            print(f"  {name:<28}{rows[-1][1]:8.2f} s {rows[-1][2]:8.0f} MB", flush=True)
        print(f"\nzoning check, {a.n:,} parcels (3 construction checks, conflicts, ledger), whole processes")
        base = rows[0][1]
        for name, s, mb in rows:
            print(f"  {name:<28}{s:8.2f} s {mb:8.0f} MB  {s / base:5.2f}×")
        print("\nI/O alone: read the parcels, write the findings (violations + parcels ledger) back as tables "
              "with a geometry type, SRID and GiST index")
        for name in IO:
            r = subprocess.run([sys.executable, __file__, "--child", name, "--port", str(cluster.port),
                                "--findings", str(out / "files.gpkg")], capture_output=True, text=True, cwd=ROOT)
            if r.returncode != 0:
                print(f"  {name:<36} failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ''}")
                continue
            d = json.loads(r.stdout.strip().splitlines()[-1])
            print(f"  {name:<36} read {d['read_s']:7.2f} s   write {d['write_s']:7.2f} s   {d['peak_mb']:7.0f} MB")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
