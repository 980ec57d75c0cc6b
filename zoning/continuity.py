"""What an earlier run (--previous) becomes in this one, recognised on the ground rather than by number: findings
that continue (their id and first detection kept), the auditor's follow-up carried to the parcels on the same
ground, and the earlier findings gone from the ground (rectified). Pure: arrays and tables in, tables out."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from .ledger import FOLLOW_UP as FOLLOW_UP_DEFAULTS

# the earlier run's layers and the fields this module needs from them (a --previous file must have them)
PREVIOUS_FIELDS = {"violations": ("violation_id", "check_id", "parcel_id", "control_id", "detected_on"),
                   "parcels": ("parcel_id", "verdict", "status", "checked_by", "checked_on", "remark")}
FOLLOW_UP = PREVIOUS_FIELDS["parcels"][1:]



def finding_keys(df: pd.DataFrame) -> pd.Series:
    """What identifies a finding across runs when parcel ids persist: (check, parcel, control feature)."""
    return group_keys(df) + "\x1f" + df["parcel_id"].astype(str)


def group_keys(df: pd.DataFrame) -> pd.Series:
    """The (check, control feature) a finding belongs to: findings continue each other only within one."""
    control = df["control_id"].astype(object).where(df["control_id"].notna(), "").astype(str)
    return df["check_id"].astype(str) + "\x1f" + control


def filled(s: pd.Series) -> pd.Series:
    """Cells holding a value (not null, not blank, not the text 'None')."""
    t = s.astype(str).str.strip()
    return s.notna() & (t != "") & (t != "None") & (t != "nan") & (t != "NaT")


@dataclass
class Earlier:
    """An earlier run's findings or ledger parcels on the ground: their table (positions 0..n-1) and their
    China-Albers geometries, indexed."""

    table: pd.DataFrame
    geoms: np.ndarray
    tree: shapely.STRtree
    area: np.ndarray
    group: np.ndarray | None = None  # (check, control) of findings: pairs only match within one
    id_index: pd.Index | None = None  # the findings' ids (object dtype: fast membership tests)
    keys: np.ndarray | None = None  # the findings' (check, parcel, control) keys
    bounds: np.ndarray | None = None  # (n, 4)

    @classmethod
    def of(cls, table: pd.DataFrame, geoms: np.ndarray, grouped: bool = False) -> "Earlier":
        table = table.reset_index(drop=True)
        geoms = np.asarray(geoms, dtype=object)
        return cls(table, geoms, shapely.STRtree(geoms), shapely.area(geoms),
                   group_keys(table).to_numpy(dtype=object) if grouped else None,
                   pd.Index(table["violation_id"].astype(str).to_numpy(dtype=object), dtype=object)
                   if "violation_id" in table else None,
                   finding_keys(table).to_numpy(dtype=object) if grouped else None, shapely.bounds(geoms))

    def __len__(self) -> int:
        return len(self.table)


def same_ground(geoms: np.ndarray, earlier: Earlier, match: dict, group: np.ndarray | None = None) -> pd.DataFrame:
    """Pairs (current ``cur``, earlier ``prev``) that lie on the same ground.

    Two parts are on the same ground when their overlap is at least ``match["min_share"]`` of the smaller one, or
    when they are the same shape re-digitised: within ``match["tolerance_m"]`` of each other everywhere (Hausdorff
    distance), which keeps small parcels shifted by a metre or two matched. With ``group``, only pairs of the same
    (check, control feature). Returns ``cur``, ``prev``, ``overlap_m2`` and ``share_prev`` (the overlap's share of
    the earlier part) — planar China Albers, equal-area, which is all a share needs.
    """
    geoms = np.asarray(geoms, dtype=object)
    empty = pd.DataFrame({"cur": np.zeros(0, np.int64), "prev": np.zeros(0, np.int64), "overlap_m2": [],
                          "share_prev": [], "redrawn": np.zeros(0, dtype=bool)})
    if len(geoms) == 0 or len(earlier) == 0:
        return empty
    tol = float(match["tolerance_m"])
    # candidates by extent (widened by the tolerance): a box query is 4x faster than GEOS' dwithin, and pairs that
    # do not meet share nothing and fail the shape test's extent filter below
    bounds = shapely.bounds(geoms)
    ic, ip = earlier.tree.query(shapely.box(bounds[:, 0] - tol, bounds[:, 1] - tol, bounds[:, 2] + tol,
                                            bounds[:, 3] + tol))
    if group is not None and len(ic):
        keep = np.asarray(group, dtype=object)[ic] == earlier.group[ip]
        ic, ip = ic[keep], ip[keep]
    if len(ic) == 0:
        return empty
    a_cur, a_prev = shapely.area(geoms[ic]), earlier.area[ip]
    smaller = np.minimum(a_cur, a_prev)
    need = float(match["min_share"]) * smaller
    # the overlap is at most the overlap of the extents: neighbours that cannot reach the share are not intersected
    bc, bp = bounds[ic], earlier.bounds[ip]
    box = np.clip(np.minimum(bc[:, 2], bp[:, 2]) - np.maximum(bc[:, 0], bp[:, 0]), 0, None) * \
        np.clip(np.minimum(bc[:, 3], bp[:, 3]) - np.maximum(bc[:, 1], bp[:, 1]), 0, None)
    inter = np.zeros(len(ic))
    can = (box >= need) & (box > 0)
    inter[can] = overlap_area(geoms[ic[can]], earlier.geoms[ip[can]], a_cur[can], a_prev[can])
    ok = (inter >= need) & (inter > 0)
    redrawn = np.zeros(len(ic), dtype=bool)
    if tol > 0:  # only pairs that share little need the shape test, and only those whose extents differ by tol
        rest = (~ok | (inter <= 0.5 * a_prev)) & (np.abs(bc - bp).max(axis=1) <= tol)
        redrawn[rest] = shapely.hausdorff_distance(geoms[ic[rest]], earlier.geoms[ip[rest]]) <= tol
        ok |= redrawn
    return pd.DataFrame({"cur": ic[ok], "prev": ip[ok], "overlap_m2": inter[ok],
                         "share_prev": np.where(a_prev[ok] > 0, inter[ok] / np.maximum(a_prev[ok], 1e-12), 1.0),
                         "redrawn": redrawn[ok]})


def overlap_area(a: np.ndarray, b: np.ndarray, area_a: np.ndarray, area_b: np.ndarray) -> np.ndarray:
    """Area of each pair's intersection: the part's own area where the two are equal or one covers the other (most
    pairs across two surveys: the same parcel, or one grown), the intersection elsewhere (2-3x faster overall)."""
    out = np.zeros(len(a))
    same = shapely.equals_exact(a, b, tolerance=0.0)  # the same parcel copied into the next survey: 10x cheaper
    out[same] = area_a[same]
    todo = np.nonzero(~same)[0]
    a, b, area_a, area_b = a[todo], b[todo], area_a[todo], area_b[todo]
    part = np.zeros(len(a))
    _covered(a, b, area_a, area_b, part)
    out[todo] = part
    return out


def _covered(a, b, area_a, area_b, out) -> None:
    a_in_b = shapely.covers(b, a)
    out[a_in_b] = area_a[a_in_b]
    rest = np.nonzero(~a_in_b)[0]
    b_in_a = shapely.covers(a[rest], b[rest])
    out[rest[b_in_a]] = area_b[rest[b_in_a]]
    rest = rest[~b_in_a]
    if len(rest):
        out[rest] = np.nan_to_num(shapely.area(shapely.intersection(a[rest], b[rest])))


def join_groups(keys: np.ndarray, values: np.ndarray, n: int, sep: str = "; ", sort: bool = True) -> np.ndarray:
    """``sep``-joined values per key 0..n-1 ("" where a key has none): distinct and sorted with ``sort``, else in
    their order. Vectorised over the rank within each group (a key holds a handful of values, so the loop runs a
    few times, not once per key)."""
    out = np.full(n, "", dtype=object)
    if len(keys) == 0:
        return out
    s = pd.DataFrame({"k": np.asarray(keys), "v": np.asarray(values, dtype=object).astype(str)})
    s = s.drop_duplicates().sort_values(["k", "v"]) if sort else s.sort_values("k", kind="stable")
    k, v = s["k"].to_numpy(), s["v"].to_numpy(dtype=object)
    start = np.r_[0, np.nonzero(np.diff(k))[0] + 1]
    rank = np.arange(len(k)) - np.repeat(start, np.diff(np.r_[start, len(k)]))
    for r in range(int(rank.max()) + 1):
        sel = rank == r
        out[k[sel]] = v[sel] if r == 0 else out[k[sel]] + sep + v[sel]
    return out


def continue_findings(rows: pd.DataFrame, geoms: np.ndarray, earlier: Earlier, match: dict,
                      taken: np.ndarray) -> tuple[pd.DataFrame, dict]:
    """Current findings that continue earlier ones on the ground keep the earlier id and first detection.

    A current finding continues an earlier one of the same check and control feature on the same ground
    (:func:`same_ground`): a parcel renumbered, re-drawn, split, merged or partly demolished still continues. Every
    earlier id it continues is listed in ``continues_ids``, and it is first detected on the earliest of their
    dates. A current finding keeps an earlier ``violation_id`` when it has the same (check, parcel, control) key,
    or holds more than half of the earlier part, or is its re-digitised shape; of several (a merge) it keeps the
    one it overlaps most. Current parts do not overlap, so each earlier id has at most one such successor whatever
    the order or chunks of the parcels; a remnant or a minor piece of a split continues the earlier finding under
    an id of its own. (``taken``: earlier ids kept in earlier chunks, so that ids stay unique in a survey whose
    parcels overlap; ``claims`` lets :func:`final_ids` settle such cases as the whole run would.)
    A finding that keeps no earlier id but whose own id an earlier finding had (row-number parcel ids, a parcel id
    reused for other ground) gets a suffix from its geometry, so that one id never names two grounds.

    Returns the rows and ``{"continued": earlier positions continued, "taken": positions whose id was taken,
    "by_id": positions continued by a finding with the same key}``.
    """
    rows = rows.copy()
    n = len(rows)
    if "continues_ids" not in rows:
        rows["continues_ids"] = ""
    none = np.zeros(0, dtype=np.int64)
    if n == 0 or len(earlier) == 0:
        return rows, {"continued": none, "taken": none, "by_id": none, "claims": pd.DataFrame()}
    table = earlier.table
    pairs = same_ground(geoms, earlier, match, group_keys(rows).to_numpy(dtype=object))
    cur, prev = pairs["cur"].to_numpy(), pairs["prev"].to_numpy()
    pairs["same_key"] = finding_keys(rows).to_numpy(dtype=object)[cur] == earlier.keys[prev]
    redrawn = pairs["redrawn"].to_numpy(dtype=bool)
    # a claim on an earlier id: the same key, more than half of the earlier part, or its re-digitised shape. Current
    # parts do not overlap, so an earlier part has at most one claimant, whatever the chunks: ids do not depend on
    # the order of the parcels (``taken`` only guards against overlapping parcels in a survey)
    claim = pairs["same_key"].to_numpy() | (pairs["share_prev"].to_numpy() > 0.5) | redrawn
    cand = _winners(pairs[claim & ~taken[prev]])
    earlier_ids = table["violation_id"].astype(str).to_numpy(dtype=object)
    own = rows["violation_id"].to_numpy(dtype=object).astype(str)
    clash = pd.Index(own, dtype=object).isin(earlier.id_index)
    if clash.any():
        own = own.astype(object)
        own[clash] = [f"{i}-g{_digest(g)}" for i, g in
                      zip(own[clash], shapely.to_wkb(np.asarray(geoms, dtype=object)[clash]))]
    ids = own.astype(object).copy()
    ids[cand["cur"].to_numpy()] = earlier_ids[cand["prev"].to_numpy()]
    rows["violation_id"] = ids
    c = pairs[claim]
    claims = pd.DataFrame({"prev": c["prev"].to_numpy(), "same_key": c["same_key"].to_numpy(),
                           "overlap_m2": c["overlap_m2"].to_numpy(), "own": own[c["cur"].to_numpy()],
                           "given": ids[c["cur"].to_numpy()]})
    rows["continues_ids"] = join_groups(cur, earlier_ids[prev], n)
    first = rows["first_detected_on"].astype(object).to_numpy().copy()
    if len(pairs):
        dates = table["first_detected_on"].to_numpy(dtype=object)[prev]
        has = pd.notna(dates)
        if has.any():
            earliest = pd.Series(dates[has].astype(str)).groupby(cur[has]).min()
            at = earliest.index.to_numpy()
            mine = pd.Series(first[at]).astype(str)
            first[at] = np.where(pd.notna(first[at]) & (mine.to_numpy() < earliest.to_numpy()), first[at],
                                 earliest.to_numpy())
    rows["first_detected_on"] = first
    return rows, {"continued": np.unique(prev), "taken": cand["prev"].to_numpy(),
                  "by_id": np.unique(prev[pairs["same_key"].to_numpy()]), "claims": claims}


def _winners(claims: pd.DataFrame, cur: str = "cur") -> pd.DataFrame:
    """One claim per earlier part (the same key first, then the largest overlap) and then one per current finding
    (the same, among the parts it won)."""
    best = claims.sort_values(["prev", "same_key", "overlap_m2", cur], ascending=[True, False, False, True])
    best = best.drop_duplicates("prev")
    return best.sort_values([cur, "same_key", "overlap_m2", "prev"],
                            ascending=[True, False, False, True]).drop_duplicates(cur)


def final_ids(claims: list[pd.DataFrame], earlier_ids: np.ndarray) -> dict[str, str]:
    """The ids given chunk by chunk (``given``) that the claims of the whole run decide otherwise: only where two
    current findings claimed one earlier part from different chunks (overlapping parcels). Returns
    {given id: final id}; empty when every chunk decided as the whole run would."""
    if not claims:
        return {}
    c = pd.concat(claims, ignore_index=True)
    if len(c) == 0:
        return {}
    won = _winners(c, "own")
    final = pd.Series(np.asarray(earlier_ids, dtype=object)[won["prev"].to_numpy()], index=won["own"].to_numpy())
    rows = c.drop_duplicates("own")[["own", "given"]]
    rows = rows.assign(final=rows["own"].map(final).fillna(rows["own"]))
    changed = rows[rows["given"] != rows["final"]]
    return dict(zip(changed["given"], changed["final"]))


def _digest(b: bytes) -> str:
    return hashlib.blake2b(b, digest_size=3).hexdigest()


def first_dates(table: pd.DataFrame) -> pd.Series:
    """Each earlier finding's first detection: ``first_detected_on``, else ``detected_on``, else null."""
    first = table["first_detected_on"] if "first_detected_on" in table else pd.Series(None, index=table.index)
    det = table["detected_on"] if "detected_on" in table else pd.Series(None, index=table.index)
    first = first.astype(object).where(filled(first), det.astype(object))
    return first.where(filled(first), None)


def first_detected(rows: pd.DataFrame, run_date: str) -> pd.DataFrame:
    """``first_detected_on`` of findings seen for the first time: their detection date, else ``run_date``."""
    rows = rows.copy()
    own = rows["detected_on"].where(filled(rows["detected_on"]), run_date) if "detected_on" in rows else run_date
    rows["first_detected_on"] = own
    return rows


VERDICT_RANK = {"违法": 3, "待核实": 2, "合法": 1}  # strictest first when merged parcels disagree


def follow_up_filled(table: pd.DataFrame) -> np.ndarray:
    """Ledger rows where the auditor recorded something (a verdict or status other than the defaults, a name,
    a date or a remark)."""
    out = np.zeros(len(table), dtype=bool)
    for f, default in FOLLOW_UP_DEFAULTS.items():
        if f in table:
            s = table[f]
            out |= (filled(s) & (s.astype(str).str.strip() != default)).to_numpy()
    return out


def carry_follow_up(ledger: pd.DataFrame, geoms: np.ndarray, earlier: Earlier | None,
                    match: dict) -> tuple[pd.DataFrame, np.ndarray]:
    """The auditor's follow-up (verdict, status, checker, date, remark) carried by ground to the current parcels.

    Each current parcel takes the follow-up of the earlier parcels on its ground (:func:`same_ground`; ``earlier``:
    the earlier parcels that hold an auditor's record, the others have nothing to carry): the
    strictest verdict (违法, then 待核实, then 合法), then the largest overlap. ``previous_parcel_ids`` lists them;
    where they disagree, ``follow_up_note`` says which verdicts were merged. ``rectification_failed`` (整改不到位)
    marks a parcel carried as 已整改 that is still found. Returns the ledger and the earlier positions carried.
    """
    ledger = ledger.copy()
    n = len(ledger)
    ledger["previous_parcel_ids"] = ""
    ledger["follow_up_note"] = ""
    used = np.zeros(0, dtype=np.int64)
    if n and earlier is not None and len(earlier):
        table = earlier.table
        pairs = same_ground(geoms, earlier, match)
        cur, prev = pairs["cur"].to_numpy(), pairs["prev"].to_numpy()
        verdict = table["verdict"].astype(str).str.strip().to_numpy(dtype=object) if "verdict" in table else \
            np.full(len(table), "", dtype=object)
        pairs["rank"] = pd.Series(verdict[prev]).map(VERDICT_RANK).fillna(2).to_numpy()
        best = pairs.sort_values(["cur", "rank", "overlap_m2", "prev"], ascending=[True, False, False, True]) \
            .drop_duplicates("cur")
        bc, bp = best["cur"].to_numpy(), best["prev"].to_numpy()
        for f in FOLLOW_UP_DEFAULTS:
            if f not in table:
                continue
            vals = table[f].to_numpy(dtype=object)[bp]
            keep = filled(pd.Series(vals, dtype=object)).to_numpy()
            col = ledger[f].to_numpy(dtype=object).copy()
            col[bc[keep]] = pd.Series(vals[keep], dtype=object).astype(str).str.strip().to_numpy()
            ledger[f] = col
        pid = table["parcel_id"].astype(str).to_numpy(dtype=object)
        ledger["previous_parcel_ids"] = join_groups(cur, pid[prev], n)
        v = pd.DataFrame({"cur": cur, "verdict": verdict[prev], "pid": pid[prev]})
        v = v[filled(v["verdict"])]
        differ = v.groupby("cur")["verdict"].nunique()
        differ = differ[differ > 1].index.to_numpy()
        if len(differ):
            d = v[v["cur"].isin(differ)]
            d = d.assign(rank=d["verdict"].map(VERDICT_RANK).fillna(2)).sort_values(
                ["cur", "rank", "pid"], ascending=[True, False, True])
            text = (d["verdict"] + " " + d["pid"]).groupby(d["cur"]).agg("; ".join)
            note = ledger["follow_up_note"].to_numpy(dtype=object)
            note[text.index.to_numpy()] = "合并图斑核查结论不同，取最严 merged parcels disagree, strictest kept: " + \
                text.to_numpy(dtype=object)
            ledger["follow_up_note"] = note
        used = np.unique(prev)
    sev = ledger["worst_severity"].astype(str) if "worst_severity" in ledger else pd.Series("", index=ledger.index)
    ledger["rectification_failed"] = ((ledger["status"].astype(str) == "已整改") & (sev != "")).to_numpy()
    return ledger, used


def remap_ids(joined: pd.Series, old: np.ndarray, new: np.ndarray, sep: str = "; ") -> np.ndarray:
    """``sep``-joined ids with each of ``old`` replaced by the matching ``new`` (the ledger's ``violation_ids``
    after findings took earlier ids)."""
    change = np.asarray(old, dtype=object) != np.asarray(new, dtype=object)
    s = pd.Series(joined, dtype=object).fillna("").reset_index(drop=True)
    if not change.any() or len(s) == 0:
        return s.to_numpy(dtype=object)
    mapping = pd.Series(np.asarray(new, dtype=object)[change], index=np.asarray(old, dtype=object)[change])
    mapping = mapping[~mapping.index.duplicated()]
    parts = s[s != ""].str.split(sep).explode()
    hit = parts.map(mapping)
    touched = np.unique(parts.index[hit.notna().to_numpy()])
    if len(touched) == 0:
        return s.to_numpy(dtype=object)
    parts = parts[parts.index.isin(touched)]
    parts = parts.map(mapping).fillna(parts)
    out = s.to_numpy(dtype=object).copy()
    redone = join_groups(parts.index.to_numpy(), parts.to_numpy(dtype=object), len(s), sep, sort=False)
    out[touched] = redone[touched]
    return out


def with_follow_up(rows: pd.DataFrame, parcels: pd.DataFrame | None) -> pd.DataFrame:
    """Earlier findings with the follow-up their parcel held in the earlier ledger (``parcels``: the ledger rows
    with a record; the strictest verdict where it lists a parcel twice), the ledger's defaults where it held none."""
    rows = rows.copy()
    hit = pd.DataFrame(index=range(len(rows)))
    if parcels is not None and len(parcels):
        p = parcels.assign(_rank=parcels["verdict"].astype(str).str.strip().map(VERDICT_RANK).fillna(2)
                           if "verdict" in parcels else 2)
        p = p.sort_values("_rank", ascending=False, kind="stable").drop_duplicates("parcel_id")
        hit = p.set_index(p["parcel_id"].astype(str)).reindex(rows["parcel_id"].astype(str).to_numpy())
    for f, default in FOLLOW_UP_DEFAULTS.items():
        vals = pd.Series(hit[f].to_numpy(dtype=object) if f in hit else [None] * len(rows), dtype=object)
        rows[f] = vals.where(filled(vals), default).to_numpy(dtype=object)
    return rows


def rectification_summary(county: np.ndarray, check: np.ndarray, gone: np.ndarray, ids: np.ndarray,
                          checks: list[str]) -> pd.DataFrame:
    """Per county and construction check: earlier findings, those rectified (gone from the ground) and the
    rectification rate (rectified ÷ earlier; null where there were none), a TOTAL row per check."""
    df = pd.DataFrame({"county_id": np.asarray(county, dtype=object), "check_id": np.asarray(check, dtype=object),
                       "gone": np.asarray(gone, dtype=bool)})
    g = df.groupby(["check_id", "county_id"]).agg(previous_count=("gone", "size"), rectified_count=("gone", "sum"))
    g = g.reset_index()
    tot = df.groupby("check_id").agg(previous_count=("gone", "size"), rectified_count=("gone", "sum")).reset_index()
    tot["county_id"] = "TOTAL"
    full = pd.MultiIndex.from_product([checks, list(ids) + ["TOTAL"]], names=["check_id", "county_id"])
    out = pd.concat([g, tot], ignore_index=True).set_index(["check_id", "county_id"])
    out = out[~out.index.duplicated()].reindex(full.union(out.index)).fillna(0).astype("int64").reset_index()
    out["rectification_rate"] = np.where(out["previous_count"] > 0,
                                         np.round(out["rectified_count"] / out["previous_count"].clip(lower=1), 4),
                                         np.nan)
    return out
