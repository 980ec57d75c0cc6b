"""Spatial partitions for work spread over a cluster: Hilbert-ordered groups of features, grids of tiles, and
extents carried between CRSs without ever missing a feature.

Pure: numpy arrays of bounds in, index arrays and boxes out.
"""
from __future__ import annotations

import numpy as np
from pyproj import CRS

from . import areas

Box = tuple[float, float, float, float]


def hilbert_keys(x: np.ndarray, y: np.ndarray, extent: Box, order: int = 16) -> np.ndarray:
    """Position of each point along a Hilbert curve of ``2**order`` cells a side over ``extent`` (vectorised
    form of the classic ``xy2d``): points close on the curve are close on the ground."""
    n = 1 << order
    x0, y0, x1, y1 = extent
    xi = np.clip(((np.asarray(x, float) - x0) / ((x1 - x0) or 1.0) * (n - 1)).astype(np.int64), 0, n - 1)
    yi = np.clip(((np.asarray(y, float) - y0) / ((y1 - y0) or 1.0) * (n - 1)).astype(np.int64), 0, n - 1)
    d = np.zeros(len(xi), dtype=np.int64)
    s = n >> 1
    while s > 0:
        rx = ((xi & s) > 0).astype(np.int64)
        ry = ((yi & s) > 0).astype(np.int64)
        d += s * s * ((3 * rx) ^ ry)
        turn = ry == 0
        flip = turn & (rx == 1)
        xi = np.where(flip, n - 1 - xi, xi)
        yi = np.where(flip, n - 1 - yi, yi)
        xi, yi = np.where(turn, yi, xi), np.where(turn, xi, yi)
        s >>= 1
    return d


def hilbert_groups(bounds: np.ndarray, size: int) -> list[np.ndarray]:
    """Features (bounds ``(4, n)``: minx, miny, maxx, maxy) in groups of at most ``size``, in Hilbert order of
    their centres; each group's indices ascending (the order of the layer)."""
    n = bounds.shape[1]
    if n == 0:
        return []
    step = 1_000_000  # slices: the temporaries of 10⁷ features would take gigabytes

    def centres(i):
        b = bounds[:, i:i + step]
        return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2

    parts = [centres(i) for i in range(0, n, step)]
    ext = (min(float(x.min()) for x, _ in parts), min(float(y.min()) for _, y in parts),
           max(float(x.max()) for x, _ in parts), max(float(y.max()) for _, y in parts))
    keys = np.empty(n, dtype=np.int64)
    for i in range(0, n, step):
        x, y = parts[i // step]
        keys[i:i + step] = hilbert_keys(x, y, ext)
    del parts
    order = np.argsort(keys, kind="stable")
    return [np.sort(order[i:i + size]) for i in range(0, n, size)]


def union_box(bounds: np.ndarray, index: np.ndarray | None = None) -> Box:
    """The extent of some features (bounds ``(4, n)``)."""
    b = bounds if index is None else bounds[:, index]
    return float(b[0].min()), float(b[1].min()), float(b[2].max()), float(b[3].max())


def pad(box: Box, crs) -> Box:
    """``box`` widened by 0.1 % of its size plus about a metre, against rounding where CRSs meet."""
    crs = CRS.from_user_input(crs)
    eps = 1e-5 if crs.is_geographic else 1.0
    x0, y0, x1, y1 = box
    m = 1e-3 * max(x1 - x0, y1 - y0) + eps
    return x0 - m, y0 - m, x1 + m, y1 + m


def to_crs_box(box: Box, src, dst) -> Box:
    """A box holding the image of ``box`` in ``dst`` (its densified outline transformed), padded."""
    src, dst = CRS.from_user_input(src), CRS.from_user_input(dst)
    if src != dst:
        box = tuple(float(v) for v in areas.transformer(src, dst).transform_bounds(*box, densify_pts=21))
    return pad(box, dst)


def boxes_to_crs(bounds: np.ndarray, src, dst) -> np.ndarray:
    """Per-feature boxes ``(4, n)`` in ``dst`` that hold each feature's image: the corners and edge midpoints of
    its ``src`` box transformed, padded. The feature lies in its box, so its image lies in the image of the box."""
    src, dst = CRS.from_user_input(src), CRS.from_user_input(dst)
    x0, y0, x1, y1 = bounds
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    xs = np.stack([x0, xm, x1, x1, x1, xm, x0, x0])
    ys = np.stack([y0, y0, y0, ym, y1, y1, y1, ym])
    if src != dst:
        tx, ty = areas.transformer(src, dst).transform(xs.ravel(), ys.ravel())
        xs, ys = np.asarray(tx).reshape(xs.shape), np.asarray(ty).reshape(ys.shape)
    out = np.stack([xs.min(0), ys.min(0), xs.max(0), ys.max(0)])
    eps = 1e-5 if dst.is_geographic else 1.0
    m = 1e-3 * np.maximum(out[2] - out[0], out[3] - out[1]) + eps
    return out + np.stack([-m, -m, m, m])


def tile_grid(extent: Box, n_tiles: int) -> list[Box]:
    """About ``n_tiles`` square-ish tiles covering ``extent``; the last row and column reach past its edge so
    that half-open tiles [x0, x1) × [y0, y1) hold every point of it."""
    x0, y0, x1, y1 = extent
    w, h = max(x1 - x0, 1e-9), max(y1 - y0, 1e-9)
    nx = max(1, int(round(np.sqrt(max(n_tiles, 1) * w / h))))
    ny = max(1, int(round(max(n_tiles, 1) / nx)))
    xs = np.linspace(x0, x1, nx + 1)
    ys = np.linspace(y0, y1, ny + 1)
    xs[-1] = ys[-1] = np.inf
    xs[0] = ys[0] = -np.inf
    return [(xs[i], ys[j], xs[i + 1], ys[j + 1]) for j in range(ny) for i in range(nx)]


def in_tile(bounds: np.ndarray, tile: Box) -> np.ndarray:
    """Indices of the features whose box (``(4, n)``) meets ``tile``."""
    x0, y0, x1, y1 = tile
    hit = (bounds[2] >= x0) & (bounds[0] <= x1) & (bounds[3] >= y0) & (bounds[1] <= y1)
    return np.nonzero(hit)[0]
