"""`--cluster` from the command line, against real `dask scheduler` and `dask worker` processes."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, assert_same_outputs, run_cli

SAMPLE = ROOT / "sample_data"
LINES = ["--red-line", str(SAMPLE / "red_line.gpkg"), "--farmland", str(SAMPLE / "farmland.gpkg"),
         "--urban-boundary", str(SAMPLE / "urban_boundary.gpkg"), "--counties", str(SAMPLE / "counties.gpkg")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dask:
    """A scheduler and workers started as the README says (``dask scheduler``, ``dask worker ADDRESS``)."""

    def __init__(self, tmp: Path):
        tmp.mkdir(parents=True)
        # worker folders where any user can write (pytest's own temporary folder is private to its user)
        self.shared = Path(tempfile.mkdtemp(prefix="zoning-dask-"))
        os.chmod(self.shared, 0o777)
        self.tmp, self.port = tmp, _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.workers: list[subprocess.Popen] = []
        self.scheduler = self._start(["scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                      "--no-dashboard"], "scheduler")

    def _start(self, args, name, hide=None, swap=None):
        cmd = [sys.executable, "-m", "dask", *args]
        if hide:  # the worker's own view of the disks, without this folder (another machine's, in effect)
            # with ``swap`` (path → file): the folder holds other copies of those files there
            copies = "".join(f' && cp "{src}" "{dst}"' for dst, src in (swap or {}).items())
            cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", f'mount -t tmpfs none "{hide}"{copies} && '
                   'exec "$@"', "sh", *cmd]
        log = open(self.tmp / f"{name}.log", "w")
        return subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)

    def worker(self, hide: Path | None = None, swap: dict | None = None, memory: str = "auto") -> subprocess.Popen:
        d = self.shared / f"worker{len(self.workers)}"
        d.mkdir()
        os.chmod(d, 0o777)
        p = self._start(["worker", self.address, "--nthreads", "1", "--nworkers", "1", "--no-nanny",
                         "--no-dashboard", "--local-directory", str(d), "--memory-limit", memory], d.name, hide,
                        swap)
        self.workers.append(p)
        return p

    def wait(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout="30s") as c:
            c.wait_for_workers(n, timeout=60)

    def close(self) -> None:
        for p in [*self.workers, self.scheduler]:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        shutil.rmtree(self.shared, ignore_errors=True)


@pytest.fixture
def dask_procs(tmp_path):
    d = Dask(tmp_path / "dask")
    yield d
    d.close()


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The sample check in one process, parcels in groups of 100 (31 tasks on a cluster)."""
    d = tmp_path_factory.mktemp("single")
    rules = d / "rules.toml"
    rules.write_text("[rules]\nchunk_size = 100\n")
    r = run_cli("-q", "check", *LINES, "--construction", str(SAMPLE / "construction.gpkg"), "--rules", str(rules),
                "-o", str(d / "one.gpkg"))
    assert r.returncode == 0, r.stderr
    return d / "one.gpkg", rules


def _kill_after_the_first_group(dask_procs, rules, out, victim):
    """`zoning check` of the sample on the cluster, ``victim`` (a worker or the scheduler) killed once the first
    group of parcels is back. Returns the process, the stderr lines before the kill and the rest of stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "cli", "check", *LINES, "--construction",
                             str(SAMPLE / "construction.gpkg"), "--rules", str(rules), "-o", str(out),
                             "--cluster", dask_procs.address], stderr=subprocess.PIPE, text=True, cwd=ROOT)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("checking construction parcels: 100 of"):  # the first group is back
            os.killpg(victim.pid, signal.SIGKILL)
            break
    return proc, seen, proc.stderr.read()


def test_a_worker_killed_mid_run_changes_nothing(dask_procs, single, tmp_path):
    """Its tasks run again on the other worker; the output is complete and the same as one process's."""
    one, rules = single
    victim = dask_procs.worker()
    dask_procs.worker()
    dask_procs.wait(2)
    out = tmp_path / "two.gpkg"
    assert victim.poll() is None
    proc, seen, rest = _kill_after_the_first_group(dask_procs, rules, out, victim)
    assert proc.wait(timeout=120) == 0, "".join(seen) + rest
    assert victim.wait() == -signal.SIGKILL
    assert "checking construction parcels: 3,002 of 3,002" in rest
    counts = assert_same_outputs(one, out)
    assert counts["parcels"] == 3002 and counts["violations"] > 1000


def test_run_on_an_external_scheduler_equals_one_process(dask_procs, tmp_path):
    dask_procs.worker()
    dask_procs.worker()
    dask_procs.wait(2)
    assert run_cli("-q", "run", "-o", str(tmp_path / "one")).returncode == 0
    r = run_cli("-q", "run", "-o", str(tmp_path / "two"), "--cluster", dask_procs.address)
    assert r.returncode == 0, r.stderr
    assert_same_outputs(tmp_path / "one" / "zoning.gpkg", tmp_path / "two" / "zoning.gpkg",
                        layers=("zones", "conflicts", "violations", "parcels", "county_summary", "compensation"),
                        rel=1e-9)
    import json

    run = json.loads((tmp_path / "two" / "run.json").read_text(encoding="utf-8"))
    assert run["options"]["cluster"] == dask_procs.address


def test_unreachable_scheduler_fails_fast_and_writes_nothing(tmp_path):
    out = tmp_path / "v.gpkg"
    t = time.perf_counter()
    r = run_cli("check", *LINES, "--construction", str(SAMPLE / "construction.gpkg"), "-o", str(out),
                "--cluster", f"tcp://127.0.0.1:{_free_port()}")
    assert time.perf_counter() - t < 30
    assert r.returncode == 1
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:" in r.stderr and "dask scheduler" in r.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("address", ["local:0", "localhost:8786", "tcp//x:1"])
def test_malformed_cluster_address_is_a_usage_error(tmp_path, address):
    r = run_cli("check", *LINES, "-o", str(tmp_path / "v.gpkg"), "--cluster", address)
    assert r.returncode == 2 and "--cluster" in r.stderr and "tcp://" in r.stderr
    assert list(tmp_path.iterdir()) == []


def _can_hide_folders() -> bool:
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", "mount -t tmpfs none /mnt"],
                       capture_output=True) if shutil.which("unshare") else None
    return r is not None and r.returncode == 0


@pytest.mark.skipif(not _can_hide_folders(), reason="needs a mount namespace (root) to hide a folder from a worker")
def test_a_worker_that_cannot_see_an_input_is_named(dask_procs, tmp_path):
    """The parcels are on a disk only the client has (the worker runs with that folder hidden): the error names the
    path and the worker, before any work, and nothing is written."""
    private = tmp_path / "client-only"
    private.mkdir()
    parcels = private / "parcels.gpkg"
    shutil.copy(SAMPLE / "construction.gpkg", parcels)
    dask_procs.worker(hide=private)
    dask_procs.wait(1)
    out = tmp_path / "v.gpkg"
    r = run_cli("check", *LINES, "--construction", str(parcels), "-o", str(out), "--cluster", dask_procs.address)
    assert r.returncode == 1, r.stderr
    assert f"cannot read {parcels} (No such file or directory)" in r.stderr
    assert "worker tcp://127.0.0.1:" in r.stderr and "every worker can read" in r.stderr
    assert not out.exists()


def _project(tmp_path: Path, cluster: str) -> Path:
    text = (SAMPLE / "project.toml").read_text(encoding="utf-8")
    for name in ("counties", "landcover", "dem", "stats", "designations", "red_line", "farmland", "urban_boundary",
                 "construction", "baseline"):
        text = text.replace(f'"{name}.', f'"{SAMPLE / name}.')
    path = tmp_path / "project.toml"
    path.write_text(text.replace("[options]", f'[options]\ncluster = "{cluster}"'), encoding="utf-8")
    return path


def test_project_option_cluster(tmp_path):
    import json

    r = run_cli("-q", "run", str(_project(tmp_path, "local:2")), "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    run = json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))
    assert run["options"]["cluster"] == "local:2"
    bad = run_cli("run", str(_project(tmp_path, "locl:2")), "-o", str(tmp_path / "out2"))
    assert bad.returncode == 2 and "options.cluster" in bad.stderr and "tcp://" in bad.stderr
    assert not (tmp_path / "out2").exists()


@pytest.mark.skipif(not _can_hide_folders(), reason="needs a mount namespace (root) to give a worker its own copy")
def test_a_worker_that_reads_another_copy_of_an_input_is_refused(dask_procs, tmp_path):
    """A worker's machine holds last year's parcels at the same path: refused before any work, the worker and the
    file named, nothing written (the run used to exit 0 with findings for parcels the client's file lacks)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    parcels = shared / "parcels.gpkg"
    shutil.copy(SAMPLE / "construction.gpkg", parcels)
    stale = tmp_path / "last-year.gpkg"
    shutil.copy(SAMPLE / "baseline.gpkg", stale)
    dask_procs.worker(hide=shared, swap={parcels: stale})
    dask_procs.wait(1)
    out = tmp_path / "v.gpkg"
    r = run_cli("check", *LINES, "--construction", str(parcels), "-o", str(out), "--cluster", dask_procs.address)
    assert r.returncode == 1, r.stderr
    assert f"reads another file at {parcels}" in r.stderr and "worker tcp://127.0.0.1:" in r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


@pytest.mark.parametrize("address,hint", [("tls://127.0.0.1:9", "certificates"), ("ucx://127.0.0.1:9", "ucx-py")])
def test_cluster_protocols_without_their_setup_are_named(tmp_path, address, hint):
    r = run_cli("check", *LINES, "-o", str(tmp_path / "v.gpkg"), "--cluster", address)
    assert r.returncode == 2, r.stderr
    assert hint in r.stderr and f"--cluster {address}" in r.stderr and "Internal error" not in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_scheduler_that_dies_mid_run_is_exit_1_and_writes_nothing(dask_procs, single, tmp_path):
    _, rules = single
    dask_procs.worker()
    dask_procs.wait(1)
    out = tmp_path / "v.gpkg"
    proc, seen, rest = _kill_after_the_first_group(dask_procs, rules, out, dask_procs.scheduler)
    code = proc.wait(timeout=180)
    assert code == 1, "".join(seen) + rest
    assert "connection to the Dask scheduler was lost mid-run" in rest and "Internal error" not in rest
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name != "dask"] == []


def test_workers_paused_for_lack_of_memory_are_named_not_waited_for(dask_procs, tmp_path):
    """A worker given less memory than the libraries take pauses at once: the run says so (exit 1), names the
    worker and its limit, and writes nothing, where Dask alone would fail inside `scatter`."""
    dask_procs.worker(memory="150MB")
    dask_procs.wait(1)  # it runs until zoning's libraries load on it, for the first check of the inputs
    out = tmp_path / "out.gpkg"
    r = run_cli("check", *LINES, "--construction", str(SAMPLE / "construction.gpkg"), "-o", str(out),
                "--cluster", dask_procs.address)
    assert r.returncode == 1, r.stderr
    assert "is paused for lack of memory" in r.stderr and "MB limit" in r.stderr and "--memory-limit" in r.stderr
    assert "Traceback" not in r.stderr and not out.exists() and not list(tmp_path.glob(".*"))
    r = run_cli("classify", str(SAMPLE / "counties.gpkg"), "--raster", f"landcover={SAMPLE / 'landcover.tif'}",
                "-o", str(out), "--cluster", dask_procs.address)  # tasks submitted to it would wait for ever
    assert r.returncode == 1 and "is paused for lack of memory" in r.stderr, r.stderr
    assert not out.exists() and not list(tmp_path.glob(".*"))


def test_relative_input_paths_reach_workers_that_run_elsewhere(dask_procs, single, tmp_path):
    """Inputs given relative to the client's folder are read by workers running in folders of their own."""
    dask_procs.worker()
    dask_procs.wait(1)
    one, rules = single
    rel = [a if not a.startswith(str(ROOT)) else os.path.relpath(a, ROOT) for a in LINES]
    out = tmp_path / "rel.gpkg"
    r = run_cli("-q", "check", *rel, "--construction", "sample_data/construction.gpkg", "--rules", str(rules),
                "-o", str(out), "--cluster", dask_procs.address, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert assert_same_outputs(one, out)["violations"] > 1000
