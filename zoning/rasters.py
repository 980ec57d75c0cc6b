"""The raster kinds a classification reads, declared once: the command line's ``--raster KIND=PATH``, the project
file's inputs, the readers and the indicators all follow this table.

A new raster indicator is one entry here and its label in :data:`zoning.model.INDICATORS` (the model and the
outputs take it from there). Readers:

- ``categorical``: class shares through a land-cover legend (:mod:`zoning.legends`);
- ``terrain``: elevation blocks read with a halo (mean elevation, relief, steep share);
- ``sum``: the coverage-weighted sum of the cells (people per cell → people), divided by the county's area;
- ``mean``: the coverage-weighted mean of the valid cells (an index such as NDVI).
"""
from __future__ import annotations

from dataclasses import dataclass

READERS = ("categorical", "terrain", "sum", "mean")


@dataclass(frozen=True)
class RasterKind:
    """One kind of raster: its name on the command line, how it is read and the indicator it gives."""

    name: str
    reader: str
    help: str
    indicator: str | None = None  # for ``sum`` and ``mean``: the indicator's name
    required: bool = False

    def __post_init__(self):
        if self.reader not in READERS:
            raise ValueError(f"raster kind {self.name}: reader {self.reader!r} is not one of {READERS}")


KINDS: dict[str, RasterKind] = {k.name: k for k in [
    RasterKind("landcover", "categorical", "IGBP codes, e.g. MCD12C1, or see --legend", required=True),
    RasterKind("dem", "terrain", "metres, or the band's declared unit"),
    RasterKind("population", "sum", "people per cell: WorldPop, LandScan, GHS-POP", "pop_density"),
    RasterKind("nightlights", "sum", "radiance", "nightlight_density"),
]}


def help_text() -> str:
    """The ``--raster`` option's help, from the table."""
    kinds = ", ".join(f"{k.name}=PATH ({k.help})" for k in KINDS.values())
    required = ", ".join(k.name for k in KINDS.values() if k.required)
    return f"{kinds}. Repeat for each; only {required} is required."
