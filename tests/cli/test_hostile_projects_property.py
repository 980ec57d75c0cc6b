"""A generator of hostile project files — sections of the wrong type, options out of range or of odd types, inputs
that are folders, tables or missing, a BOM, Windows paths — fed to `zoning run`: never an internal error (exit 3)
or a traceback, and a refused run leaves the output folder as it was."""
import json
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from cli.main import cli
from tests.conftest import SAMPLE

ODD = [-1, 0, 1e308, -1e-9, "abc", "", [1, 2], {"a": 1}, True, "10", 2**63 - 1, 0.5, "C:\\data\\x.gpkg"]
OPTIONS = ["simplify_m", "sensitivity", "spread", "seed", "memory_mb", "header_row", "basemap", "cluster",
           "encoding", "assume_crs", "tianditu_key", "no_such_option"]
INPUTS = {"counties": SAMPLE / "counties.gpkg", "landcover": SAMPLE / "landcover.tif",
          "red_line": SAMPLE / "red_line.gpkg", "farmland": SAMPLE / "farmland.gpkg",
          "urban_boundary": SAMPLE / "urban_boundary.gpkg", "construction": SAMPLE / "construction.gpkg"}
BAD_INPUTS = ["folder", "table", "missing", "windows", "toml", "raster_as_vector"]


def _toml(v) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + "}"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return json.dumps(v, ensure_ascii=False)


def _bad_path(kind: str, d: Path) -> str:
    return {"folder": str(d), "table": str(SAMPLE / "stats.csv"), "missing": str(d / "nowhere.gpkg"),
            "windows": "D:\\规划\\counties.gpkg", "toml": str(SAMPLE / "project.toml"),
            "raster_as_vector": str(SAMPLE / "dem.tif")}[kind]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(options=st.dictionaries(st.sampled_from(OPTIONS), st.sampled_from(ODD), max_size=3),
       wrong_section=st.sampled_from([None, "inputs", "options", "project", "rules", "model"]),
       bad_input=st.one_of(st.none(), st.tuples(st.sampled_from(sorted(INPUTS)), st.sampled_from(BAD_INPUTS))),
       bom=st.booleans())
def test_hostile_project_files_never_end_in_an_internal_error(tmp_path_factory, options, wrong_section, bad_input,
                                                              bom):
    d = tmp_path_factory.mktemp("project")
    inputs = {k: str(v) for k, v in INPUTS.items()}
    if bad_input:
        inputs[bad_input[0]] = _bad_path(bad_input[1], d)
    sections = {"project": {"name": "敌意 hostile"}, "inputs": inputs, "options": options}
    lines = []
    for name, body in sections.items():
        if name == wrong_section:
            continue
        lines.append(f"[{name}]")
        lines += [f"{k} = {_toml(v)}" for k, v in body.items()]
    if wrong_section:
        lines.insert(0, f'{wrong_section} = "a string where a table belongs"')
    project = d / "project.toml"
    project.write_text(("\ufeff" if bom else "") + "\n".join(lines) + "\n", encoding="utf-8")
    out = d / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")  # a folder holding the user's own file: never touched
    res = CliRunner().invoke(cli, ["-q", "run", str(project), "-o", str(out), "--overwrite"])
    assert res.exit_code in (0, 1, 2, 4), (res.exit_code, res.output)
    assert "Traceback" not in res.output and "Internal error" not in res.output, res.output
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"], res.output  # refused: not a zoning output folder
    res = CliRunner().invoke(cli, ["-q", "run", str(project), "-o", str(d / "new")])
    assert res.exit_code in (0, 1, 2, 4), (res.exit_code, res.output)
    assert "Traceback" not in res.output and "Internal error" not in res.output, res.output
    if res.exit_code:
        assert not (d / "new").exists() and not [p for p in d.iterdir() if p.name.startswith(".")], res.output
    else:
        assert (d / "new" / "zoning.gpkg").exists() and (d / "new" / "run.json").exists()
