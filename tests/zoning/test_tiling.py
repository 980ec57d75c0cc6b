"""Spatial partitions for the cluster: Hilbert order, boxes carried between CRSs, tiles that find each pair once."""
import numpy as np
import pandas as pd
import shapely

from zoning import areas, controllines as cl, tiling


def test_hilbert_keys_walk_every_cell_once_through_neighbours():
    order = 3
    n = 1 << order
    gx, gy = np.meshgrid(np.arange(n), np.arange(n))
    keys = tiling.hilbert_keys(gx.ravel(), gy.ravel(), (0, 0, n - 1, n - 1), order)
    assert sorted(keys) == list(range(n * n))
    walk = np.argsort(keys)
    steps = np.abs(np.diff(gx.ravel()[walk])) + np.abs(np.diff(gy.ravel()[walk]))
    assert (steps == 1).all()  # consecutive cells on the curve share an edge


def test_hilbert_groups_are_compact_and_cover_every_feature():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 1000, (4000, 2))
    bounds = np.stack([xy[:, 0], xy[:, 1], xy[:, 0] + 1, xy[:, 1] + 1])
    groups = tiling.hilbert_groups(bounds, 500)
    assert sorted(np.concatenate(groups).tolist()) == list(range(4000))
    assert all(len(g) <= 500 and (np.diff(g) > 0).all() for g in groups)
    # a group covers far less than the whole extent (a random split of 8 would cover nearly all of it)
    spans = [(lambda b: (b[2] - b[0]) * (b[3] - b[1]))(tiling.union_box(bounds, g)) for g in groups]
    assert np.mean(spans) < 0.4 * 1000 * 1000


def test_boxes_to_crs_hold_each_feature_far_from_the_central_meridian():
    """In Xinjiang the Albers grid turns ~20° against longitude/latitude: the box of the corners alone is not
    enough, the box of the transformed outline must lie inside what boxes_to_crs gives."""
    rng = np.random.default_rng(2)
    lon, lat = rng.uniform(74, 134, 300), rng.uniform(19, 53, 300)
    size = rng.uniform(0.001, 0.5, 300)
    geoms = shapely.buffer(shapely.points(lon, lat), size, quad_segs=16)
    boxes = tiling.boxes_to_crs(shapely.bounds(geoms).T, 4490, areas.CHINA_ALBERS)
    exact = shapely.bounds(areas.to_crs(shapely.segmentize(geoms, 0.005), 4490, areas.CHINA_ALBERS)).T
    assert (boxes[0] <= exact[0]).all() and (boxes[1] <= exact[1]).all()
    assert (boxes[2] >= exact[2]).all() and (boxes[3] >= exact[3]).all()
    box = tiling.to_crs_box((100.0, 30.0, 101.0, 31.0), 4490, areas.CHINA_ALBERS)
    outline = areas.to_crs(np.array([shapely.segmentize(shapely.box(100, 30, 101, 31), 0.01)]), 4490,
                           areas.CHINA_ALBERS)[0]
    x0, y0, x1, y1 = outline.bounds
    assert box[0] <= x0 and box[1] <= y0 and box[2] >= x1 and box[3] >= y1


def _pairs(df, a_ids, b_ids):
    return pd.DataFrame({"a": a_ids[df["a"].to_numpy(int)], "b": b_ids[df["b"].to_numpy(int)],
                         "area": df["area"].to_numpy()}).sort_values(["a", "b"]).reset_index(drop=True)


def test_tiles_find_every_overlap_exactly_once():
    rng = np.random.default_rng(3)
    a = shapely.buffer(shapely.points(rng.uniform(0, 10_000, (300, 2))), rng.uniform(50, 900, 300))
    b = shapely.buffer(shapely.points(rng.uniform(0, 10_000, (300, 2))), rng.uniform(50, 900, 300))
    ids = np.arange(300)
    ext = tiling.union_box(np.concatenate([shapely.bounds(a).T, shapely.bounds(b).T], axis=1))
    for same in (False, True):
        other = a if same else b
        whole = _pairs(cl.line_overlaps(a, other, same=same), ids, ids)
        parts = []
        for tile in tiling.tile_grid(ext, 9):
            ia, ib = tiling.in_tile(shapely.bounds(a).T, tile), tiling.in_tile(shapely.bounds(other).T, tile)
            if same:
                ib = ia
            parts.append(_pairs(cl.line_overlaps(a[ia], other[ib], same=same, window=tile), ia, ib))
        tiled = pd.concat(parts).sort_values(["a", "b"]).reset_index(drop=True)
        assert len(whole) > 50
        pd.testing.assert_frame_equal(tiled, whole)


def test_tallies_clipped_to_tiles_add_up_to_the_union():
    """Conflict areas on a cluster: each tile tallies the parts inside it, so overlapping pieces that belong to
    different tiles are not counted twice."""
    from zoning import violations as vio

    rng = np.random.default_rng(4)
    pieces = shapely.buffer(shapely.points(rng.uniform(0, 5_000, (400, 2))), rng.uniform(100, 700, 400))
    county = np.where(shapely.get_x(shapely.centroid(pieces)) < 2500, "510104", "510105").astype(object)
    whole = vio.Tally()
    whole.add("self_overlap", county, np.full(400, "red_line"), pieces, "albers", parcels=False)
    want = pd.concat(whole.rows).set_index("county_id")["area_m2"]
    tiled = []
    for tile in tiling.tile_grid(tiling.union_box(shapely.bounds(pieces).T), 16):
        t = vio.Tally(clip=tile)
        t.add("self_overlap", county, np.full(400, "red_line"), pieces, "albers", parcels=False)
        tiled += t.rows
    got = pd.concat(tiled).groupby("county_id")["area_m2"].sum()
    assert want.sum() < 0.8 * shapely.area(pieces).sum()  # the pieces do overlap
    np.testing.assert_allclose(got.loc[want.index].to_numpy(), want.to_numpy(), rtol=1e-9)
