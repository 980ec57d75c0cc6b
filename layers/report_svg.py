"""The report's map thumbnail: an SVG of the control lines and the findings, small whatever the number of findings."""
from __future__ import annotations

import html

import numpy as np
import pandas as pd
import shapely

from zoning import outputs


def thumbnail(lines: dict, points: pd.DataFrame, width: int = 640) -> str:
    """An SVG map: control-line outlines and findings as dots (the worst severity per pixel), lon/lat."""
    from zoning import areas

    frames = {k: g for k, g in (lines or {}).items() if g is not None and len(g)}
    b = [shapely.total_bounds(areas.to_crs(np.array([shapely.box(*g.total_bounds)]), g.crs, areas.CGCS2000))
         for g in frames.values()]
    if len(points):
        b.append((points["lon"].min(), points["lat"].min(), points["lon"].max(), points["lat"].max()))
    if not b:
        return ""
    b = np.array(b, dtype=float)
    x0, y0, x1, y1 = b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()
    kx = np.cos(np.radians((y0 + y1) / 2))
    span = max((x1 - x0) * kx, y1 - y0, 1e-6)
    scale = width / span
    height = int(max(120, (y1 - y0) * scale))
    px = lambda x: (x - x0) * kx * scale  # noqa: E731
    py = lambda y: (y1 - y) * scale  # noqa: E731
    parts = []
    for name, g in frames.items():
        if len(g) > 20_000:  # an outline per patch would not be seen at this size
            continue
        geo = areas.to_crs(g.geometry.values, g.crs, areas.CGCS2000)
        geo = shapely.simplify(np.asarray(geo, dtype=object), 1.5 / scale)
        rings = shapely.get_rings(shapely.get_parts(geo[~shapely.is_empty(geo)]))
        coords, idx = shapely.get_coordinates(rings, return_index=True)
        sx, sy = np.round(px(coords[:, 0]), 1), np.round(py(coords[:, 1]), 1)
        starts = np.r_[0, np.nonzero(np.diff(idx))[0] + 1]
        d = np.char.add(np.char.add(np.where(np.isin(np.arange(len(sx)), starts), "M", "L"), sx.astype(str)),
                        np.char.add(",", sy.astype(str)))
        colour = outputs.LINES[name].colour
        parts.append(f'<path d="{"".join(d)}" fill="{colour}" fill-opacity="0.15" stroke="{colour}" '
                     f'stroke-width="0.6"><title>{html.escape(outputs.LINES[name].zh)}</title></path>')
    if len(points):
        # one dot per 4-pixel cell (its worst severity): the picture stays small whatever the number of findings
        cx = np.round(px(points["lon"].to_numpy()) / 4) * 4
        cy = np.round(py(points["lat"].to_numpy()) / 4) * 4
        rank = outputs.severity_rank(points["severity"])
        cell = pd.DataFrame({"x": cx, "y": cy, "r": rank}).groupby(["x", "y"])["r"].max().reset_index()
        cell = cell.sort_values("r")  # the most severe drawn last, on top
        colours = {c.rank: c.colour for c in outputs.SEVERITIES.values()}
        parts += [f'<circle cx="{x:g}" cy="{y:g}" r="2.5" fill="{colours.get(r, "#999")}" stroke="#333" '
                  'stroke-width="0.3"/>' for x, y, r in cell.itertuples(index=False)]
    legend = " ".join(f'<span style="color:{c.colour}">●</span> {html.escape(c.zh)}' for c in outputs.SEVERITIES.values()
                      if len(points) and (points["severity"] == c.code).any())
    legend += " " + " ".join(f'<span style="color:{outputs.LINES[k].colour}">■</span> {html.escape(outputs.LINES[k].zh)}'
                             for k in frames)
    return (f'<svg class="thumb" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">{"".join(parts)}</svg><div class="muted">{legend}　'
            f'经度 {x0:.3f}–{x1:.3f}°E，纬度 {y0:.3f}–{y1:.3f}°N</div>')
