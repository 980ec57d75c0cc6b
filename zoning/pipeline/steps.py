"""The step of each part of a check, one function per kind of part, the same in this process and on a cluster:
a part and the shared source in (:mod:`.sources`), a table and its tallies out. Nothing is written here."""
from __future__ import annotations

import pandas as pd

from .. import violations as vio
from .parcels import PartContext, check_parcels
from .sources import ConflictPart, ParcelPart


def conflicts_of(job) -> dict:
    """The conflicts between the lines in one tile (or in all of them), with their tallies per county."""
    source, part = job
    common = source.common
    part: ConflictPart
    lines, crs, tally = source.conflict_lines(part), common.crs, vio.Tally()
    found = vio.line_conflicts(lines, common.counties, common.rules, crs, tally)
    if part.window is None:
        return {"conflicts": found, "rows": tally.rows, "slivers": tally.slivers}
    # the union areas per county: every pair meeting the tile, clipped to it (tiles' parts add up to the union,
    # which the pairs of this tile alone would not give where conflicts overlap)
    lines.window, inside = None, vio.Tally(clip=part.window)
    vio.line_conflicts(lines, common.counties, common.rules, crs, inside)
    rows = [r.assign(area_m2=0.0) for r in tally.rows] + [r.assign(count=0) for r in inside.rows]
    return {"conflicts": found, "rows": rows, "slivers": tally.slivers}


def parcels_of(job) -> dict:
    """The construction checks and the ledger of one group of parcels, against the lines and layers near it."""
    source, part = job
    common = source.common
    part: ParcelPart
    chunk = source.parcels(part)
    sup, tally = source.supervision_near(part.box), vio.Tally()
    ctx = PartContext(common.read, source.lines_near(part.box), common.counties, common.rules, common.crs, sup)
    frame, ledger, albers, ids = check_parcels(chunk, ctx, tally, source.pool)
    return {"frame": frame, "ledger": ledger, "rows": tally.rows, "slivers": tally.slivers, "new": sup.new.rows,
            "distinct": tally.distinct, "hashes": pd.util.hash_array(ids), "n": len(chunk),
            # the China-Albers geometries the earlier run is matched with: free here, not worth sending back
            "albers": albers if source.local else None}
