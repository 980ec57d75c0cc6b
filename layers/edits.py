"""Work done on a zoning GeoPackage since the tool wrote it (the auditor's follow-up edited in QGIS, layers added),
so that ``--overwrite`` never replaces it unasked."""
from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

# the follow-up fields an auditor edits in the ledger (digested when written, so that edits are noticed)
FOLLOW_UP_FIELDS = ("verdict", "status", "checked_by", "checked_on", "remark")
_SYSTEM_TABLES = ("sqlite_", "rtree_", "gpkg_", "gpkgext_")


def written_digest(con: sqlite3.Connection) -> dict:
    """What a GeoPackage holds as the tool wrote it: its tables and a digest of the ledger's follow-up fields (kept
    in ``zoning_run``, so that ``--overwrite`` notices work done on it since)."""
    tables = sorted(r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                    if not r[0].startswith(_SYSTEM_TABLES))
    return {"tables": tables, "follow_up": _follow_up_digest(con)}


def _follow_up_digest(con: sqlite3.Connection) -> str | None:
    cols = {r[1] for r in con.execute("PRAGMA table_info(parcels)")}
    if not cols or "fid" not in cols:
        return None
    fields = [c for c in FOLLOW_UP_FIELDS if c in cols]
    if not fields:
        return None
    h = hashlib.blake2b(digest_size=16)
    cur = con.execute(f"SELECT fid, {', '.join(fields)} FROM parcels ORDER BY fid")
    while rows := cur.fetchmany(50_000):
        h.update(repr(rows).encode("utf-8"))
    return h.hexdigest()


def work_since_written(path: Path) -> list[str]:
    """What a zoning GeoPackage holds that the tool did not write: tables added, follow-up fields edited (empty
    when it is as written, or when it predates the record)."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return []
    try:
        row = con.execute("SELECT value FROM zoning_run WHERE key = 'written'").fetchone()
        if row is None:
            return []
        was = json.loads(row[0])
        now = written_digest(con)
        lost = [f"layer or table {t!r}, which zoning did not write" for t in now["tables"]
                if t not in set(was["tables"]) | {"zoning_run", "layer_styles"}]
        if was.get("follow_up") != now["follow_up"]:
            cols = {r[1] for r in con.execute("PRAGMA table_info(parcels)")}
            fields = [c for c in FOLLOW_UP_FIELDS if c in cols] or ["fid"]
            marked = con.execute(
                "SELECT count(*) FROM parcels WHERE " + " OR ".join(
                    f"coalesce({c}, '') NOT IN ('', '待核实', '未整改')" for c in fields)).fetchone()[0]
            lost.append(f"the auditor's follow-up edited in layer 'parcels' since zoning wrote it ({marked:,} "
                        f"parcel(s) now hold a verdict, status, checker, date or remark)")
        return lost
    except (sqlite3.Error, ValueError, KeyError, TypeError):
        return []
    finally:
        con.close()


def file_digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def edited(path: Path, written: dict | None = None) -> list[str]:
    """:func:`work_since_written` of a GeoPackage, or of every GeoPackage in a zoning output folder, and the QGIS
    projects of the folder saved since (``written``: their digests as the folder's marker recorded them)."""
    if path.is_dir():
        lost = [f"{p.name}: {w}" for p in sorted(path.glob("*.gpkg")) for w in work_since_written(p)]
        for name, digest in (written or {}).items():
            p = path / name
            if p.is_file() and file_digest(p) != digest:
                lost.append(f"{name}: the QGIS project, saved since zoning wrote it (its layout and styles)")
        return lost
    return work_since_written(path) if path.suffix.lower() == ".gpkg" else []
