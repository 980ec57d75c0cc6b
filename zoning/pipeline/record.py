"""The run's record: metadata, library versions, input hashes, the log file, progress reporting."""
from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from pathlib import Path
from typing import Callable

import geopandas as gpd
import numpy as np
import pandas as pd

from ..errors import Cancelled

log = logging.getLogger("zoning")


def version() -> str:
    from ..version import __version__

    return __version__


def metadata() -> dict:
    return {"tool": "zoning", "version": version(), "run_time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def provenance(inputs: dict, project: str | None = None, model: str | None = None,
               rules: str | None = None) -> dict:
    """What a filed report must be tied to: the project, the run date, the tool, model and rules, and each input
    file's name, modification date, size and SHA-256 (inputs given as data frames are listed as such)."""
    from layers.postgis import is_uri, parse
    from layers.vector import parse_source

    files = []
    for role, spec in inputs.items():
        if spec is None:
            continue
        if is_uri(spec):
            files.append({"role": role, "file": str(parse(spec)), "kind": "PostGIS table"})
            continue
        if not isinstance(spec, (str, Path)):
            files.append({"role": role, "file": "(data in memory)"})
            continue
        path = parse_source(spec).path
        if not path.is_file():
            continue
        st = path.stat()
        files.append({"role": role, "file": path.name, "path": str(path.resolve()),
                      "modified": time.strftime("%Y-%m-%d %H:%M", time.localtime(st.st_mtime)),
                      "bytes": st.st_size, "sha256": sha256(path)})
    return {"project": project or "", "run_date": time.strftime("%Y-%m-%d %H:%M:%S%z"),
            "tool": f"zoning {version()}", "model": model or "", "rules": rules or "", "inputs": files}


def step(progress: Callable | None, stage: str, done: int, total: int | None) -> None:
    """Report progress to the caller's callback (a False return cancels) and to the log."""
    if progress is not None and progress(stage, done, total) is False:
        raise Cancelled(f"cancelled during {stage} ({done:,} of {total:,} done); nothing was written."
                        if total else f"cancelled during {stage}; nothing was written.")
    # ``progress`` lets the CLI draw a bar on a terminal; elsewhere (and in the log file) a plain line
    log.info("%s: %s%s", stage, f"{done:,}", f" of {total:,} ({done / total:.0%})" if total else "",
             extra={"progress": (stage, done, total)})


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def library_versions() -> dict:
    import folium
    import pyogrio
    import pyproj
    import rasterio
    import shapely

    return {"zoning": version(), "geopandas": gpd.__version__, "shapely": shapely.__version__,
            "GEOS": shapely.geos_version_string, "pyproj": pyproj.__version__, "PROJ": pyproj.proj_version_str,
            "rasterio": rasterio.__version__, "GDAL": rasterio.__gdal_version__, "pyogrio": pyogrio.__version__,
            "folium": folium.__version__, "numpy": np.__version__, "pandas": pd.__version__}


class _ProgressFilter(logging.Filter):
    """The log file keeps every 10th percent of a progress stage, not every chunk."""

    def __init__(self):
        super().__init__()
        self._last: dict = {}

    def filter(self, record: logging.LogRecord) -> bool:
        prog = getattr(record, "progress", None)
        if prog is None:
            return True
        stage, done, total = prog
        mark = int(10 * done / total) if total else done
        if self._last.get(stage) == mark and done != total:
            return False
        self._last[stage] = mark
        return True


@contextlib.contextmanager
def log_file(path: Path):
    """Record INFO and above in ``path`` whatever the console verbosity (-q/-v)."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.addFilter(_ProgressFilter())
    old_level = log.level
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)  # console handlers keep their own level
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()
        log.setLevel(old_level)
