"""The codebase's own rules: one direction of dependency, small modules, a README that matches the schema."""
import ast
from pathlib import Path

import pytest

from zoning import outputs

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("zoning", "layers", "cli")


def _modules(pkg):
    return [p for p in (ROOT / pkg).rglob("*.py") if "vendor" not in p.parts]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", [p for pkg in PACKAGES for p in _modules(pkg)], ids=lambda p: p.name)
def test_no_module_over_400_lines(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 400


def test_domain_imports_neither_layers_nor_cli():
    domain = [p for p in _modules("zoning") if "pipeline" not in p.parts]
    bad = {p.name: _imports(p) & {"layers", "cli"} for p in domain}
    assert not {k: v for k, v in bad.items() if v}


def test_layers_do_not_import_the_pipeline_or_cli():
    bad = {p.name: [m for m in _imports(p) if m == "cli"] for p in _modules("layers")}
    assert not {k: v for k, v in bad.items() if v}
    for p in _modules("layers"):
        assert "zoning.pipeline" not in p.read_text(encoding="utf-8"), p


@pytest.mark.parametrize("layer", ["violations", "conflicts", "county_summary", "parcels", "compensation"])
def test_readme_field_tables_match_the_schema(layer):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert outputs.field_table(layer) in readme, f"regenerate with: python -c \"from zoning import outputs; " \
                                                 f"print(outputs.field_table('{layer}'))\""


def test_every_package_is_installed_by_a_plain_pip_install():
    """`pip install .` (not -e) installs only the packages pyproject.toml lists: every one must be there."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for pkg in PACKAGES for p in (ROOT / pkg).rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)


def _module_graph() -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    """Every project module's imports of other project modules (inside functions too), and the private names
    (one leading underscore) imported from another module."""
    mods = {}
    for pkg in PACKAGES:
        for f in _modules(pkg):
            name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = f
    edges, private = {m: set() for m in mods}, []
    for m, f in mods.items():
        here = m if f.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = here.split(".")[:len(here.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                for a in node.names:
                    t = f"{target}.{a.name}" if f"{target}.{a.name}" in mods else target
                    if t in mods and t != m:
                        edges[m].add(t)
                        if a.name.startswith("_") and not a.name.startswith("__"):
                            private.append((m, t, a.name))
            elif isinstance(node, ast.Import):
                edges[m] |= {a.name for a in node.names if a.name in mods and a.name != m}
    return edges, private


def test_no_import_cycles_counting_imports_inside_functions():
    edges, _ = _module_graph()
    state: dict[str, int] = {}

    def cycle_from(m, path):
        state[m] = 1
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                return path[path.index(t):] + [t] if t in path else [m, t]
            if t not in state:
                found = cycle_from(t, path + [t])
                if found:
                    return found
        state[m] = 2
        return None

    for m in sorted(edges):
        if m not in state:
            found = cycle_from(m, [m])
            assert not found, " → ".join(found)


def test_no_module_imports_another_modules_private_names():
    _, private = _module_graph()
    assert not private


def test_the_readme_step_by_step_commands_run_as_written(tmp_path):
    """The first screen's commands, copied as a new user would, in a folder beside the sample."""
    import os
    import shlex
    import subprocess
    import sys

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("**Or step by step**", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line.startswith("zoning ")]
    assert [c.split()[1] for c in commands] == ["classify", "compare", "check", "map"]
    os.symlink(ROOT / "sample_data", tmp_path / "sample_data")
    for c in commands:
        r = subprocess.run([sys.executable, "-m", "cli", *shlex.split(c)[1:]], cwd=tmp_path, capture_output=True,
                           text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert r.returncode == 0, (c, r.stderr)
    assert {"zones.gpkg", "comparison.gpkg", "check.gpkg", "map.html"} <= {p.name for p in tmp_path.iterdir()}
    assert (tmp_path / "report" / "report.html").exists()


def test_no_function_outside_the_cli_takes_more_than_ten_parameters():
    """Options travel in one value (ClassifyOptions, CheckJob, PartContext), not as twenty parameters."""
    wide = []
    for pkg in ("zoning", "layers"):
        for path in _modules(pkg):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    a = node.args
                    n = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) + bool(a.vararg) + bool(a.kwarg)
                    if n > 10:
                        wide.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n})")
    assert not wide
