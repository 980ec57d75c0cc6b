"""Statistics tables as people keep them: a title row above the header, blank rows, 合计 rows, numbers written
with thousands separators, per cent signs or full-width digits. Every row that cannot be read is reported with its
row number in the file, never dropped silently."""
from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd

from .errors import DataError

ID_COLUMNS = ("county_id", "adcode", "code", "id")
TOTAL_WORDS = ("合计", "总计", "小计", "全省", "全市", "total", "sum")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _norm(v) -> str:
    """Full-width digits, commas and spaces to ASCII (NFKC), trimmed."""
    return unicodedata.normalize("NFKC", str(v)).strip() if v is not None and not (isinstance(v, float)
                                                                                   and np.isnan(v)) else ""


def find_header(raw: pd.DataFrame, header_row: int | None, known: tuple[str, ...]) -> int:
    """0-based index of the header row: ``header_row`` (1-based) if given, else the first of the first 10 rows
    that names a known column."""
    if header_row is not None:
        if not 1 <= header_row <= len(raw):
            raise DataError(f"--header-row {header_row}: the table has {len(raw)} rows")
        return header_row - 1
    names = set(known)
    for i in range(min(10, len(raw))):
        if names & {_norm(v) for v in raw.iloc[i]}:
            return i
    return 0


def parse_number(v) -> float:
    """``"1,234.5"``, ``"１２３４"``, ``"45.2%"``, ``" 12 "`` → float; NaN for blanks; raises ValueError otherwise."""
    s = _norm(v)
    if s in ("", "-", "—", "--", "nan", "NaN", "NA", "N/A"):
        return np.nan
    s = s.replace(",", "").replace(" ", "").replace("\u00a0", "")
    if s.endswith("%"):
        s = s[:-1]
    if not _NUMBER.match(s):
        raise ValueError(s)
    return float(s)


def clean_table(raw: pd.DataFrame, source: str, numeric: tuple[str, ...], header_row: int | None = None
                ) -> tuple[pd.DataFrame, list[str]]:
    """The table with its header found, blank and total rows removed and numeric columns parsed.

    Parameters
    ----------
    raw : every cell as read (``header=None``, text)
    numeric : columns to parse as numbers

    Returns
    -------
    (table with ``_row`` holding each row's number in the file, notes for the log: one per kind of problem)
    """
    h = find_header(raw, header_row, ID_COLUMNS + numeric)
    header = [_norm(v) or f"column_{j + 1}" for j, v in enumerate(raw.iloc[h])]
    seen = pd.Series(header)
    if seen.duplicated().any():
        twice = sorted(set(seen[seen.duplicated()]))
        cols = [j + 1 for j, v in enumerate(header) if v in twice]
        raise DataError(f"{source}: row {h + 1} names column(s) {', '.join(map(repr, twice))} more than once "
                        f"(columns {', '.join(map(str, cols))}, after trimming spaces); rename or delete one so "
                        "each figure has one column")
    body = raw.iloc[h + 1:].copy()
    body.columns = header
    body["_row"] = np.arange(h + 2, h + 2 + len(body))  # 1-based line/row numbers in the file
    notes = []
    cells = body.drop(columns="_row").map(_norm)
    blank = (cells == "").all(axis=1)
    if blank.any():
        notes.append(f"{source}: blank row(s) {_rows(body['_row'][blank])} skipped")
    first = cells.iloc[:, :2].apply(lambda c: c.str.lower()).agg(" ".join, axis=1)
    total = ~blank & first.map(lambda t: any(w in t for w in TOTAL_WORDS))
    if total.any():
        notes.append(f"{source}: total row(s) {_rows(body['_row'][total])} ({', '.join(first[total].head(3))}) "
                     "skipped")
    body = body[~blank & ~total]
    for col in numeric:
        if col not in body.columns:
            continue
        text = body[col].map(_norm).str.replace(r"[,\s\u00a0]", "", regex=True).str.removesuffix("%")
        empty = text.isin(("", "-", "—", "--", "nan", "NaN", "NA", "N/A"))
        values = pd.to_numeric(text.where(~empty & text.str.match(_NUMBER.pattern)), errors="coerce")
        failed = ~empty & values.isna()
        body[col] = values.astype(float)
        bad = [f"row {r}: {v}" for r, v in zip(body["_row"][failed], text[failed])]
        if bad:
            notes.append(f"{source}: column {col!r} has values that are not numbers, left missing: "
                         f"{'; '.join(bad[:8])}{' …' if len(bad) > 8 else ''}")
    for c in body.columns:
        if c != "_row" and c not in numeric:
            body[c] = body[c].map(_norm)
    return body.reset_index(drop=True), notes


def _rows(rows) -> str:
    rows = list(rows)
    return ", ".join(map(str, rows[:10])) + (f" … ({len(rows)} in all)" if len(rows) > 10 else "")
