"""Where the parts of a check find their features: held whole in this process (:class:`WholeLayers`), or read part
by part from the files by each cluster task (:class:`PlannedLayers`). Both answer the same questions, so the step
of a part (:mod:`.steps`) is one function wherever it runs."""
from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
from pyproj import CRS

from layers import parts as lparts

from .. import areas, controllines as cl, tiling, violations as vio
from . import supervising
from .config import ReadOptions
from .executors import Serial
from .inputs import PlannedLayer, load_part, load_polygons
from .parcels import labels as feature_labels
from .reduce import LINE_ROLES


@dataclass(frozen=True)
class ConflictPart:
    """A tile of the conflict checks: the features of each line meeting it (``fids``) and its China-Albers
    ``window``; both None for the whole of the lines at once."""

    fids: dict | None = None
    window: tuple | None = None


@dataclass(frozen=True)
class ParcelPart:
    """A group of construction parcels: read already (``frame``), or to be read by feature id (``fids``) within
    the China-Albers-projected extent ``box`` (layer CRS)."""

    frame: gpd.GeoDataFrame | None = None
    fids: np.ndarray | None = None
    box: tuple | None = None


@dataclass
class Common:
    """What every part of one check shares besides the features."""

    counties: vio.Counties | None
    read: ReadOptions
    rules: dict
    crs_wkt: str  # the output CRS (the red line's)
    run_date: str
    ledger: bool

    @property
    def crs(self) -> CRS:
        return CRS.from_wkt(self.crs_wkt)

    def supervision(self, baseline, cropland) -> supervising.Supervision:
        """A part's own supervision: the baseline and cropland near it; what it finds new is tallied apart."""
        return supervising.Supervision(cropland=cropland, baseline=baseline, run_date=self.run_date,
                                       ledger=self.ledger, match=dict(self.rules["year_on_year"]))


@dataclass
class WholeLayers:
    """One process: every layer read once and held whole, the lines prepared for the parcels (subdivided, indexed)
    in a thread while the conflicts are checked."""

    common: Common
    frames: dict[str, gpd.GeoDataFrame]  # the lines as read, for the outputs that draw them
    lines: vio.Lines
    sup: supervising.Supervision  # the baseline and cropland, whole
    pool: object = field(default_factory=Serial)
    prepared: Future | None = None
    local = True

    def conflict_lines(self, part: ConflictPart) -> vio.Lines:
        return self.lines

    def lines_near(self, box) -> vio.Lines:
        return self.prepared.result() if self.prepared is not None else self.lines

    def supervision_near(self, box) -> supervising.Supervision:
        return self.common.supervision(self.sup.baseline, self.sup.cropland)

    def parcels(self, part: ParcelPart) -> gpd.GeoDataFrame:
        return part.frame

    def whole_lines(self, need: bool = True) -> dict:
        return self.frames

    def line_geoms(self) -> dict:
        return self.lines.geoms


@dataclass
class PlannedLayers:
    """A cluster: every layer checked and planned on the client; each task reads the features near its part."""

    common: Common
    lines: dict[str, PlannedLayer]
    extras: dict[str, PlannedLayer]  # cropland, baseline
    construction: PlannedLayer | None
    specs: dict  # the lines as given, read whole on the client only for the outputs that draw them
    local = False
    pool = Serial()

    def __post_init__(self):
        self._whole: dict = {}

    def __getstate__(self):  # what is sent to the workers: never the client's whole lines
        return {k: v for k, v in self.__dict__.items() if k != "_whole"}

    def __setstate__(self, state):
        self.__dict__.update(state, _whole={})

    def paths(self) -> list:
        """The files the workers read (database tables are read by each worker's own connection)."""
        return [pl.plan.path for pl in [*self.lines.values(), *self.extras.values(), self.construction]
                if pl and isinstance(pl.plan.path, Path)]

    def _near(self, fids: dict | None = None, box=None, box_crs=None) -> vio.Lines:
        geoms, ids, labels = {}, {}, {}
        for k, pl in self.lines.items():
            g = load_part(pl, fids=fids[k]) if fids is not None else \
                load_part(pl, bbox=tiling.to_crs_box(box, box_crs, pl.crs_wkt))
            geoms[k] = np.asarray(areas.to_crs(g.geometry.values, g.crs, areas.CHINA_ALBERS), dtype=object)
            ids[k] = g["_id"].astype(str).to_numpy(dtype=object)
            labels[k] = feature_labels(g)
        return vio.Lines(geoms, ids, labels=labels)

    def conflict_lines(self, part: ConflictPart) -> vio.Lines:
        lines = self._near(fids=part.fids)
        lines.window = part.window
        return lines

    def lines_near(self, box) -> vio.Lines:
        return self._near(box=box, box_crs=self.construction.crs_wkt).prepare(self.common.rules["rules"]["subdivide_m"])

    def supervision_near(self, box) -> supervising.Supervision:
        near = {}
        for key, pl in self.extras.items():
            g = load_part(pl, bbox=tiling.to_crs_box(box, self.construction.crs_wkt, pl.crs_wkt))
            geoms = np.asarray(areas.to_crs(g.geometry.values, g.crs, areas.CHINA_ALBERS), dtype=object)
            near[key] = cl.prepare_control(geoms, g["_id"].astype(str).to_numpy(dtype=object),
                                           self.common.rules["rules"]["subdivide_m"])
        return self.common.supervision(near.get("baseline"), near.get("cropland"))

    def parcels(self, part: ParcelPart) -> gpd.GeoDataFrame:
        chunk = lparts.read_part(self.construction.plan, fids=part.fids)
        return chunk if chunk.crs is not None else chunk.set_crs(self.construction.crs_wkt)

    def whole_lines(self, need: bool = True) -> dict:
        """The lines read whole on the client, for the outputs that draw them (reports, maps, ``zoning run``)."""
        if need and not self._whole:
            self._whole.update({k: load_polygons(self.specs[k], role, self.common.read, k)
                                for k, role in LINE_ROLES.items()})
        return self._whole

    def line_geoms(self) -> dict:  # only the urban expansion and land-cover change rows need whole lines
        return {k: np.asarray(areas.to_crs(g.geometry.values, g.crs, areas.CHINA_ALBERS), dtype=object)
                for k, g in self.whole_lines().items()}
