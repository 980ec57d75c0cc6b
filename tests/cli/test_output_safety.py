"""Outputs never destroy what they did not create; refused or interrupted runs leave no trace."""
import errno
import hashlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from layers.files import Output
from tests.conftest import ROOT, SAMPLE, run_cli
from zoning.errors import OutputError


def tree_digest(path: Path) -> str:
    """Names, sizes and contents of everything under ``path`` (or of the file)."""
    h = hashlib.sha256()
    if path.is_file():
        h.update(path.read_bytes())
        return h.hexdigest()
    for p in sorted(path.rglob("*")):
        h.update(str(p.relative_to(path)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def no_debris(parent: Path) -> bool:
    return not [p for p in parent.iterdir() if p.name.startswith(".") and p.name != ".hypothesis"]


def project_copy(d: Path) -> Path:
    for f in SAMPLE.iterdir():
        if f.suffix in (".gpkg", ".tif", ".toml", ".csv"):
            shutil.copy(f, d / f.name)
    return d / "project.toml"


def test_overwrite_refuses_the_project_folder_itself(tmp_path):
    proj = project_copy(tmp_path)
    before = tree_digest(tmp_path)
    r = run_cli("run", str(proj), "-o", str(tmp_path), "--overwrite")
    assert r.returncode == 4 and "holds the run's input" in r.stderr, r.stderr
    assert tree_digest(tmp_path) == before


def test_overwrite_refuses_a_folder_with_other_files(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.docx").write_text("an officer's notes")
    before = tree_digest(out)
    r = run_cli("run", "-o", str(out), "--overwrite")
    assert r.returncode == 4 and "zoning did not write" in r.stderr
    assert tree_digest(out) == before and no_debris(tmp_path)


def test_overwrite_refuses_a_zoning_output_with_a_file_added(tmp_path):
    out = tmp_path / "out"
    assert run_cli("-q", "run", "-o", str(out)).returncode == 0
    (out / "my_analysis.qgz").write_text("x")
    before = tree_digest(out)
    r = run_cli("run", "-o", str(out), "--overwrite")
    assert r.returncode == 4 and tree_digest(out) == before


def test_overwrite_refuses_a_run_whose_qgis_project_was_saved_since(tmp_path):
    """Opening zoning.qgz in QGIS and saving it (layout, styles) is work: --overwrite keeps it unless told not to."""
    import zipfile

    out = tmp_path / "out"
    assert run_cli("-q", "run", "-o", str(out)).returncode == 0
    with zipfile.ZipFile(out / "zoning.qgz") as z:
        qgs = z.read("zoning.qgs")
    with zipfile.ZipFile(out / "zoning.qgz", "w") as z:  # as QGIS saves it: the same name, new content
        z.writestr("zoning.qgs", qgs.replace(b"</title>", b" (my layout)</title>"))
    before = tree_digest(out)
    r = run_cli("run", "-o", str(out), "--overwrite")
    assert r.returncode == 4 and "zoning.qgz: the QGIS project, saved since zoning wrote it" in r.stderr
    assert tree_digest(out) == before and no_debris(tmp_path)
    r = run_cli("-q", "run", "-o", str(out), "--overwrite", "--discard-edits")
    assert r.returncode == 0 and tree_digest(out) != before


def test_a_target_that_appears_during_the_run_is_left_alone(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(OutputError, match="appeared while zoning was running"):
        with Output(target, overwrite=False, directory=True) as tmp:
            (tmp / "a.txt").write_text("new")
            target.mkdir()
            (target / "theirs.txt").write_text("theirs")
    assert [p.name for p in target.iterdir()] == ["theirs.txt"] and no_debris(tmp_path)
    # with --overwrite, a foreign folder that appears is still not replaced
    shutil.rmtree(target)
    with pytest.raises(OutputError, match="no longer a zoning output"):
        with Output(target, overwrite=True, directory=True) as tmp:
            target.mkdir()
            (target / "theirs.txt").write_text("theirs")
    assert [p.name for p in target.iterdir()] == ["theirs.txt"] and no_debris(tmp_path)


def test_a_second_run_on_the_same_target_fails_clearly(tmp_path):
    import json
    import socket

    from layers.files import _process_start

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / ".out.lock").write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(),
                                                       "started": _process_start(holder.pid)}))
        r = run_cli("run", "-o", str(tmp_path / "out"))
        assert r.returncode == 4 and f"another zoning run (process {holder.pid} on " in r.stderr
    finally:
        holder.kill()
        holder.wait()
    # a lock left by a dead process is taken over
    r = run_cli("-q", "run", "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert no_debris(tmp_path)


def _start_run(tmp_path, name="out", stage=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-m", "cli", "run", "-o", name], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(f".{name}.*.part")):
        time.sleep(0.01)
    part = next(iter(tmp_path.glob(f".{name}.*.part")), None)
    # the stage of the run to interrupt: checking (the GeoPackage is being written) or writing reports
    while stage and time.time() < deadline and part is not None and not (part / stage).exists():
        time.sleep(0.005)
    return p


@pytest.mark.parametrize("sig, code, stage", [(signal.SIGTERM, 143, None), (signal.SIGTERM, 143, "zoning.gpkg"),
                                              (signal.SIGTERM, 143, "report"), (signal.SIGHUP, 129, "zoning.log")])
def test_sigterm_and_sighup_leave_nothing_behind(tmp_path, sig, code, stage):
    p = _start_run(tmp_path, stage=stage)
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == code, err
    assert "no output was written" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() and no_debris(tmp_path)


def test_debris_of_a_killed_run_is_cleared_by_the_next(tmp_path):
    p = _start_run(tmp_path, stage="zoning.gpkg")
    p.kill()
    p.wait()
    assert not no_debris(tmp_path)  # kill -9 cannot clean up
    r = run_cli("-q", "run", "-o", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert no_debris(tmp_path)


def test_a_full_disk_is_exit_4_with_the_path(tmp_path):
    # RLIMIT_FSIZE makes writes fail as on a full disk (Python ignores SIGXFSZ)
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "cli", "run", "-o", "out"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, preexec_fn=limit)
    assert r.returncode == 4, r.stderr
    assert "out" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists() and no_debris(tmp_path)


def test_output_error_on_enospc_inside_the_protocol(tmp_path):
    with pytest.raises(OutputError, match="the disk is full"):
        with Output(tmp_path / "x.gpkg") as tmp:
            tmp.write_text("partial")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(state=st.sampled_from(["foreign_file", "foreign_dir", "non_zoning_gpkg", "parent_is_file"]),
       overwrite=st.booleans())
def test_refused_runs_leave_the_target_byte_identical(tmp_path, state, overwrite):
    d = tmp_path / f"{state}{overwrite}"
    d.mkdir()
    target = d / "zones.gpkg"
    if state == "foreign_file":
        target.write_bytes(b"someone's data")
    elif state == "foreign_dir":
        target.mkdir()
        (target / "x").write_text("x")
    elif state == "non_zoning_gpkg":
        shutil.copy(SAMPLE / "counties.gpkg", target)
    else:
        (d / "file").write_text("a file")
        target = d / "file" / "zones.gpkg"
    before = tree_digest(d)
    r = run_cli("classify", str(SAMPLE / "counties.gpkg"), "--raster", f"landcover={SAMPLE / 'landcover.tif'}",
                "-o", str(target), *(["--overwrite"] if overwrite else []))
    assert r.returncode == 4, r.stderr
    assert tree_digest(d) == before and no_debris(d)


def test_formula_cells_are_written_as_text(tmp_path):
    import geopandas as gpd

    parcels = gpd.read_file(SAMPLE / "construction.gpkg")
    parcels["id"] = parcels["id"].astype(str)
    evil = '=HYPERLINK("http://example.com","x")'
    parcels.loc[parcels.index[:400], "id"] = [f"{evil}{i}" for i in range(400)]
    parcels.to_file(tmp_path / "p.gpkg")
    r = run_cli("check", "--red-line", str(SAMPLE / "red_line.gpkg"), "--farmland", str(SAMPLE / "farmland.gpkg"),
                "--urban-boundary", str(SAMPLE / "urban_boundary.gpkg"), "--construction", str(tmp_path / "p.gpkg"),
                "-o", str(tmp_path / "c.gpkg"), "--report", str(tmp_path / "rep"))
    assert r.returncode == 0, r.stderr
    from zoning.outputs import fields_by_label

    csv = pd.read_csv(tmp_path / "rep" / "violations.csv", dtype=str, encoding="utf-8-sig")
    csv = csv.rename(columns=fields_by_label())
    hits = csv[csv.parcel_id.str.contains("HYPERLINK")]
    assert len(hits) and hits.parcel_id.str.startswith("'=").all()
    wb = openpyxl.load_workbook(tmp_path / "rep" / "report.xlsx")
    types = {c.data_type for ws in wb.worksheets for row in ws.iter_rows() for c in row
             if isinstance(c.value, str) and "HYPERLINK" in c.value}
    assert types == {"s"}


def test_report_folder_named_like_the_geopackage(tmp_path):
    """`-o v1.gpkg --report v1`: each output clears only its own temporaries (`.v1.` is a prefix of `.v1.gpkg.`)."""
    r = run_cli("check", "--red-line", str(SAMPLE / "red_line.gpkg"), "--farmland", str(SAMPLE / "farmland.gpkg"),
                "--urban-boundary", str(SAMPLE / "urban_boundary.gpkg"), "--construction",
                str(SAMPLE / "construction.gpkg"), "-o", str(tmp_path / "v1.gpkg"), "--report", str(tmp_path / "v1"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "v1.gpkg").is_file() and (tmp_path / "v1" / "report.xlsx").is_file()
    assert no_debris(tmp_path)


def _check_into(out: Path, *extra: str):
    return run_cli("check", "--red-line", str(SAMPLE / "red_line.gpkg"), "--farmland", str(SAMPLE / "farmland.gpkg"),
                   "--urban-boundary", str(SAMPLE / "urban_boundary.gpkg"), "--construction",
                   str(SAMPLE / "construction.gpkg"), "-o", str(out), *extra)


def test_overwrite_never_loses_the_auditors_work(tmp_path):
    """The ledger's verdicts filled in QGIS, a layer of field photos added: --overwrite refuses and says what would
    be lost; --discard-edits replaces it all the same; an unedited output is replaced as before."""
    import geopandas as gpd
    import pyogrio

    out = tmp_path / "check.gpkg"
    assert _check_into(out).returncode == 0
    assert _check_into(out, "--overwrite").returncode == 0  # as the tool wrote it: replaced
    led = gpd.read_file(out, layer="parcels")
    led.loc[:2, ["verdict", "remark"]] = ["违法", "现场核实"]
    pyogrio.write_dataframe(led, out, layer="parcels", layer_options={"OVERWRITE": "YES"})
    photos = gpd.GeoDataFrame({"photo": ["IMG_0001.jpg"]}, geometry=[led.geometry.iloc[0].centroid], crs=led.crs)
    pyogrio.write_dataframe(photos, out, layer="field_photos")
    before = tree_digest(out)
    r = _check_into(out, "--overwrite")
    assert r.returncode == 4, r.stderr
    assert "follow-up edited in layer 'parcels'" in r.stderr and "3 parcel(s) now hold" in r.stderr
    assert "'field_photos'" in r.stderr and "--discard-edits" in r.stderr and f"--previous {out}" in r.stderr
    assert tree_digest(out) == before and no_debris(tmp_path)
    r = _check_into(out, "--discard-edits")
    assert r.returncode == 0, r.stderr
    assert "field_photos" not in {n for n, _ in pyogrio.list_layers(out)}
    assert (gpd.read_file(out, layer="parcels")["verdict"] == "待核实").all()


def test_overwrite_of_a_run_folder_with_an_edited_ledger_is_refused(tmp_path):
    import pyogrio

    out = tmp_path / "run"
    assert run_cli("run", str(project_copy(tmp_path)), "-o", str(out)).returncode == 0
    led = pyogrio.read_dataframe(out / "zoning.gpkg", layer="parcels")
    led.loc[0, "status"] = "已整改"
    pyogrio.write_dataframe(led, out / "zoning.gpkg", layer="parcels", layer_options={"OVERWRITE": "YES"})
    before = tree_digest(out)
    r = run_cli("run", str(project_copy(tmp_path)), "-o", str(out), "--overwrite")
    assert r.returncode == 4 and "zoning.gpkg: the auditor's follow-up edited" in r.stderr, r.stderr
    assert tree_digest(out) == before


@pytest.mark.parametrize("lock", ["1", "pid-reused", "other-host"])
def test_a_stale_lock_of_a_live_process_that_is_not_the_run_is_taken_over(tmp_path, lock):
    """PID 1 (an init, never a zoning run), a process number reused by a later process, a lock from another host:
    none blocks the target."""
    import json
    import socket

    text = {"1": "1", "pid-reused": json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": "1"}),
            "other-host": json.dumps({"pid": os.getpid(), "host": "elsewhere", "started": None})}[lock]
    if lock == "pid-reused":  # the test process itself holds the number, started later than the lock says
        text = json.dumps({"pid": os.getppid(), "host": socket.gethostname(), "started": "1"})
    (tmp_path / ".out.gpkg.lock").write_text(text)
    out = tmp_path / "out.gpkg"
    r = run_cli("-q", "check", "--red-line", str(SAMPLE / "red_line.gpkg"), "--farmland",
                str(SAMPLE / "farmland.gpkg"), "--urban-boundary", str(SAMPLE / "urban_boundary.gpkg"), "-o",
                str(out))
    assert r.returncode == 0, r.stderr
    assert out.exists() and no_debris(tmp_path)


def test_a_lock_that_is_a_folder_is_named(tmp_path):
    (tmp_path / ".out.gpkg.lock").mkdir()
    r = run_cli("check", "--red-line", str(SAMPLE / "red_line.gpkg"), "--farmland", str(SAMPLE / "farmland.gpkg"),
                "--urban-boundary", str(SAMPLE / "urban_boundary.gpkg"), "-o", str(tmp_path / "out.gpkg"))
    assert r.returncode == 4 and "is a folder, not a lock file" in r.stderr and "rmdir" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "out.gpkg").exists()
