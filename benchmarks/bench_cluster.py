"""`zoning check` on one process, on `--cluster local:2` and on an external `dask scheduler` with two
`dask worker` processes (run by `bench_check.py --scale`, or on its own):

    python benchmarks/bench_cluster.py [--sizes 1000000 10000000] [--single-max 1000000] [--dense 100000 1000000]

Scenario "farmland": n parcels against 10⁶ farmland patches (plus the synthetic red line and urban boundary).
Scenario "dense": the benchmark generator's parcels against the 8,032 synthetic control polygons, where the
single process is also compared with the geopandas.overlay peer (`../shared/peers/ref_overlay.py`, run as the
script it is). Prints wall time, the client's and each worker's peak memory, and checks that every variant
found the same violations (count and total area).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _data  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT.parent / "shared" / "peers" / "ref_overlay.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class External:
    """`dask scheduler` and two single-threaded `dask worker` processes, as the README starts them."""

    def __init__(self, workers: int = 2):
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        port = self.address.rsplit(":", 1)[1]
        self.dir = tempfile.mkdtemp(prefix="zoning-bench-dask-")
        dask = [sys.executable, "-m", "dask"]
        self.procs = [subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
        for i in range(workers):
            self.procs.append(subprocess.Popen(
                [*dask, "worker", self.address, "--nthreads", "1", "--nworkers", "1", "--no-nanny",
                 "--no-dashboard", "--memory-limit", "0", "--local-directory", f"{self.dir}/w{i}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        from distributed import Client

        with Client(self.address, timeout="30s") as c:
            c.wait_for_workers(workers, timeout=60)

    def close(self):
        for p in self.procs:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _run_meta(gpkg: Path) -> dict:
    con = sqlite3.connect(gpkg)
    try:
        return {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM zoning_run")}
    finally:
        con.close()


def _totals(gpkg: Path) -> tuple[int, float]:
    con = sqlite3.connect(gpkg)
    try:
        n, a = con.execute("SELECT count(*), sum(area_m2) FROM violations").fetchone()
    finally:
        con.close()
    return int(n), float(a or 0.0)


def zoning_run(lines: dict, parcels: Path, cluster: str | None, out: Path) -> dict:
    args = [sys.executable, "-m", "cli", "-q", "check", "--red-line", str(lines["red_line"]), "--farmland",
            str(lines["farmland"]), "--urban-boundary", str(lines["urban_boundary"]), "--construction", str(parcels),
            "-o", str(out), "--overwrite"] + (["--cluster", cluster] if cluster else [])
    t = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "%M", *args], capture_output=True, text=True, cwd=ROOT)
    secs = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"zoning check {cluster or ''} failed:\n{r.stderr[-3000:]}")
    meta = _run_meta(out)
    tree_mb = int(r.stderr.strip().splitlines()[-1]) / 1024  # the largest process of the tree
    n, area = _totals(out)
    return {"seconds": secs, "client_mb": meta.get("client_peak_mb", tree_mb),
            "workers_mb": list((meta.get("worker_peak_mb") or {}).values()), "violations": n, "area": area}


def overlay_run(lines: dict, parcels: Path, out: Path) -> dict:
    t = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, str(PEER), str(lines["red_line"]),
                        str(lines["farmland"]), str(lines["urban_boundary"]), str(parcels), str(out)],
                       capture_output=True, text=True)
    secs = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"ref_overlay.py failed:\n{r.stderr[-3000:]}")
    n, area = _totals(out)
    return {"seconds": secs, "client_mb": int(r.stderr.strip().splitlines()[-1]) / 1024, "workers_mb": [],
            "violations": n, "area": area}


def scenario(name: str, lines: dict, parcels: Path, n: int, single: bool, peer: bool) -> list[tuple]:
    rows = []
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "v.gpkg"
        variants = (["one process"] if single else []) + ["local:2", "external 2 workers"]
        for v in variants:
            if v == "external 2 workers":
                ext = External()
                try:
                    res = zoning_run(lines, parcels, ext.address, out)
                finally:
                    ext.close()
            else:
                res = zoning_run(lines, parcels, None if v == "one process" else v, out)
            rows.append((name, n, f"zoning check, {v}", res))
            _print(rows[-1])
        if peer:
            rows.append((name, n, "geopandas.overlay peer", overlay_run(lines, parcels, Path(d) / "peer.gpkg")))
            _print(rows[-1])
    return rows


def _print(row) -> None:
    name, n, label, r = row
    workers = ", ".join(f"{m:,.0f}" for m in r["workers_mb"]) or "-"
    print(f"{name:<9}{n:>12,}  {label:<34}{r['seconds']:>9.1f}{r['client_mb']:>10,.0f}  {workers:<14}"
          f"{r['violations']:>12,}{r['area'] / 1e4:>16,.1f}", flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 10_000_000])
    ap.add_argument("--single-max", type=int, default=1_000_000, help="largest n also run in one process")
    ap.add_argument("--dense", type=int, nargs="*", default=[100_000, 1_000_000])
    a = ap.parse_args(argv)
    print(f"{'scenario':<9}{'parcels':>12}  {'variant':<34}{'seconds':>9}{'client MB':>10}  {'workers MB':<14}"
          f"{'violations':>12}{'violation ha':>16}", flush=True)
    rows = []
    base = _data.control_lines()
    farm = {**base, "farmland": _data.farmland_patches(1_000_000)}
    for n in a.sizes:
        rows += scenario("farmland", farm, _data.big_parcels(n), n, n <= a.single_max, False)
    for n in a.dense:
        rows += scenario("dense", base, _data.parcels(n), n, True, True)
    print("\nratios: time of each variant / time of zoning check in one process (same scenario and size); every "
          "variant must find the same violations")
    for name, n, label, r in rows:
        ref = next((x for x in rows if x[0] == name and x[1] == n and x[2].endswith("one process")), None)
        same = ref is None or (ref[3]["violations"] == r["violations"] and
                               abs(ref[3]["area"] - r["area"]) <= 1e-6 * max(ref[3]["area"], 1))
        ratio = f"{r['seconds'] / ref[3]['seconds']:.2f}" if ref else "-"
        print(f"{name:<9}{n:>12,}  {label:<34}{ratio:>7}  {'same violations' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
