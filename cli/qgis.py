"""``zoning qgis path|install``: the Processing provider plugin shipped in the package, for QGIS."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

from . import qgis_plugins
from .app import cli, handle_errors

PLUGIN = "zoning_processing"


def plugins_folder() -> Path:
    """The folder holding the plugin (what ``QGIS_PLUGINPATH`` names)."""
    return Path(qgis_plugins.__file__).resolve().parent


def default_profile() -> Path:
    """QGIS 3's default user profile on this system."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "QGIS" / "QGIS3" / "profiles" / "default"


def _ours(target: Path) -> bool:
    """A link to, or an earlier copy of, this plugin (anything else at the target is the user's)."""
    if target.is_symlink():
        return True
    meta = target / "metadata.txt"
    return meta.is_file() and "hasProcessingProvider=yes" in meta.read_text(encoding="utf-8", errors="replace") \
        and meta.read_text(encoding="utf-8", errors="replace").startswith("[general]\nname=Zoning")


@cli.group()
def qgis():
    """The zoning Processing provider for QGIS (its algorithms in the Processing toolbox)."""


@qgis.command("path")
def qgis_path():
    """Print the folder holding the plugin, for QGIS_PLUGINPATH."""
    click.echo(str(plugins_folder()))


@qgis.command("install")
@click.option("--profile", "profile", type=click.Path(file_okay=False), metavar="DIR",
              help="QGIS profile folder (default: this system's default profile, e.g. "
              "~/.local/share/QGIS/QGIS3/profiles/default).")
@click.option("--copy", is_flag=True, help="Copy the plugin instead of linking it (a link follows upgrades of "
              "zoning; copy where links are not allowed).")
@handle_errors
def qgis_install(profile, copy):
    """Link (or copy) the plugin into a QGIS profile's plugin folder and say how to enable it."""
    prof = Path(profile) if profile else default_profile()
    target = prof / "python" / "plugins" / PLUGIN
    if target.exists() or target.is_symlink():
        if not _ours(target):
            raise click.ClickException(f"{target} exists and is not the zoning plugin; it was left as it is. Remove "
                                       "or rename it first.")
        if target.is_symlink() or target.is_file():
            target.unlink()
        else:
            shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    source = plugins_folder() / PLUGIN
    how = "copied"
    if not copy:
        try:
            target.symlink_to(source, target_is_directory=True)
            how = "linked"
        except OSError:  # Windows without developer mode: links need a privilege
            copy = True
    if copy:
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    exe = shutil.which("zoning") or str(Path(sys.executable).with_name("zoning"))
    click.echo(f"{how} {source} → {target}")
    click.echo("Enable it: restart QGIS, then Plugins → Manage and Install Plugins → Installed → tick "
               "“Zoning 主体功能区与三条控制线”. Its algorithms appear in the Processing Toolbox under "
               "“Zoning 主体功能区” (and in qgis_process as zoning:classify, zoning:check, …).")
    click.echo(f"If QGIS does not find `zoning` on its PATH, set Settings → Options → Processing → Providers → "
               f"Zoning → zoning executable to {exe}")
