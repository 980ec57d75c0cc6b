"""A small, fast, write-only XLSX writer for long audit tables.

openpyxl, XlsxWriter and PyExcelerate all build each cell in Python (7–60 s for 117,000 rows × 17 columns here);
this writer builds each column's XML with Arrow compute kernels and streams it into the zip, batch by batch
(~2 s for the same rows, memory per batch). Text goes in as inline strings, which a spreadsheet never evaluates,
so ids that start with ``=`` stay text. It writes what audit tables need and nothing more: a bold frozen header
with an auto-filter, column widths, number formats for areas and coordinates, dates as dates, and a print set-up
for filing (A4 landscape, as few pages wide as keep the print legible, the header row repeated on every page and
the first column on every page of a wide sheet).
"""
from __future__ import annotations

import math
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable
from xml.sax.saxutils import escape, quoteattr

import pyarrow as pa
import pyarrow.compute as pc

MAX_ROWS = 1_048_575  # Excel's row limit, less the header
NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
NS_R = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
STYLE = {"plain": 0, "area": 1, "coord": 2, "header": 3, "date": 4, "int": 5}
EXCEL_EPOCH_DAYS = 25569  # 1970-01-01 as an Excel serial day (the 1900 date system)
STYLES = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet {NS}><numFmts count="3"><numFmt numFmtId="164" formatCode="#,##0.00"/>
<numFmt numFmtId="165" formatCode="0.000000"/><numFmt numFmtId="166" formatCode="yyyy-mm-dd"/></numFmts>
<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font><font><b/><sz val="11"/><name val="Calibri"/></font>
</fonts><fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>
</fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>
<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>
<cellXfs count="6"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>
<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>
<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>
<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1" applyAlignment="1"><alignment wrapText="1" vertical="top"/></xf>
<xf numFmtId="166" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>
<xf numFmtId="3" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>
<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>"""
_BAD_XML = "[\x00-\x08\x0b\x0c\x0e-\x1f]"  # not allowed in XML 1.0


def column_letter(j: int) -> str:
    s, j = "", j + 1
    while j:
        j, r = divmod(j - 1, 26)
        s = chr(65 + r) + s
    return s


def _text(col: pa.Array) -> pa.Array:
    s = pc.fill_null(pc.cast(col, pa.string()), "")
    if not pc.any(pc.match_substring_regex(s, "[&<>\x00-\x08\x0b\x0c\x0e-\x1f]")).as_py():
        return s  # most columns need no escaping: skip four passes over them
    s = pc.replace_substring_regex(s, _BAD_XML, "")
    for a, b in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        s = pc.replace_substring(s, a, b)
    return s


def _serial_days(col: pa.Array) -> pa.Array:
    """Excel serial days of ISO dates (``2024-06-30``, or a date/timestamp column); null where not a date."""
    t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        col = pc.strptime(pc.utf8_slice_codeunits(col, 0, 10), format="%Y-%m-%d", unit="s", error_is_null=True)
    if pa.types.is_timestamp(col.type):
        col = pc.cast(col, pa.date32())
    if not pa.types.is_date32(col.type):
        return pa.nulls(len(col), pa.int32())
    return pc.add(pc.cast(col, pa.int32()), EXCEL_EPOCH_DAYS)


def _cells(col: pa.Array, ref: str, rows: pa.Array, style: int) -> pa.Array:
    """The ``<c>`` element of each row for one column ('' for nulls)."""
    t = col.type
    if style == STYLE["date"]:
        days = _serial_days(col)
        as_date = pc.binary_join_element_wise(f'<c r="{ref}', rows, f'" s="{style}"><v>', pc.cast(days, pa.string()),
                                              "</v></c>", "")
        text = _cells(col, ref, rows, STYLE["plain"])  # what is not a date stays as it was written
        return pc.fill_null(pc.if_else(pc.is_valid(days), as_date, text), "")
    if pa.types.is_boolean(t):
        v = pc.if_else(col, "1", "0")
        cell = pc.binary_join_element_wise(f'<c r="{ref}', rows, '" t="b"><v>', v, "</v></c>", "")
    elif pa.types.is_integer(t) or pa.types.is_floating(t):
        v = pc.cast(col, pa.string())
        cell = pc.binary_join_element_wise(f'<c r="{ref}', rows, f'" s="{style}"><v>', v, "</v></c>", "")
        if pa.types.is_floating(t):  # NaN is not a number a spreadsheet accepts
            cell = pc.if_else(pc.is_nan(col), "", cell)
    else:
        cell = pc.binary_join_element_wise(f'<c r="{ref}', rows, '" t="inlineStr"><is><t xml:space="preserve">',
                                           _text(col), "</t></is></c>", "")
    return pc.fill_null(pc.if_else(pc.is_valid(col), cell, ""), "")


class Workbook:
    """``with Workbook(path) as wb: wb.sheet(name, columns, labels, batches, widths)``."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.zip = zipfile.ZipFile(self.path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)
        self.sheets: list[tuple[str, str, int]] = []  # (name, filter range, header rows)

    def __enter__(self) -> "Workbook":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._finish()
        self.zip.close()

    def sheet(self, name: str, columns: list[str], labels: list[str], batches: Iterable[pa.RecordBatch],
              widths: list[float], styles: dict[str, str] | None = None, hidden: set[str] | None = None) -> int:
        """Write one sheet from Arrow record batches holding ``columns``; returns the number of data rows.

        ``hidden``: columns kept in the sheet (filters, formulas) but hidden, so the printed page stays legible.
        """
        styles, hidden = styles or {}, hidden or set()
        n_sheet = len(self.sheets) + 1
        last = column_letter(len(columns) - 1)
        cols = "".join(f'<col min="{j + 1}" max="{j + 1}" width="{w:g}" customWidth="1"'
                       + (' hidden="1"' if c in hidden else "") + "/>" for j, (c, w) in enumerate(zip(columns, widths)))
        head = "".join(f'<c r="{column_letter(j)}1" t="inlineStr" s="{STYLE["header"]}"><is><t>{escape(lb)}</t></is>'
                       f"</c>" for j, lb in enumerate(labels))
        n = 0
        with self.zip.open(f"xl/worksheets/sheet{n_sheet}.xml", "w", force_zip64=True) as f:
            f.write((f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet {NS} {NS_R}>'
                     '<sheetPr><pageSetUpPr fitToPage="1"/></sheetPr><sheetViews><sheetView workbookViewId="0">'
                     '<pane ySplit="1" topLeftCell="A2" '
                     'activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>'
                     f'<cols>{cols}</cols><sheetData><row r="1">{head}</row>').encode())
            # compression (zlib releases the GIL) on a second thread while the next batch's XML is built;
            # one batch in flight at most, so memory stays at about two batches
            with ThreadPoolExecutor(max_workers=1) as writer:
                pending = None
                for batch in batches:
                    if n >= MAX_ROWS:
                        break
                    batch = batch.slice(0, MAX_ROWS - n)
                    if batch.num_rows == 0:
                        continue
                    rows = pc.cast(pa.array(range(n + 2, n + 2 + batch.num_rows), pa.int64()), pa.string())
                    parts = ['<row r="', rows, '">']
                    for j, c in enumerate(columns):
                        parts.append(_cells(batch.column(c), column_letter(j), rows, STYLE[styles.get(c, "plain")]))
                    parts.append("</row>")
                    data = _buffer(pc.binary_join_element_wise(*parts, ""))
                    if pending is not None:
                        pending.result()
                    pending = writer.submit(f.write, data)
                    n += batch.num_rows
                if pending is not None:
                    pending.result()
            # filing: A4 (paperSize 9) landscape, as many pages tall as needed and as few wide as keep the print
            # legible; a sheet wider than a page repeats its first column (the id) on every page
            wide = pages_wide([w for c, w in zip(columns, widths) if c not in hidden])
            f.write(f'</sheetData><autoFilter ref="A1:{last}{n + 1}"/><pageMargins left="0.4" right="0.4" top="0.5" '
                    'bottom="0.5" header="0.3" footer="0.3"/><pageSetup paperSize="9" orientation="landscape" '
                    f'fitToWidth="{wide}" fitToHeight="0"/><headerFooter><oddFooter>&amp;L&amp;A&amp;R&amp;P / &amp;N'
                    '</oddFooter></headerFooter></worksheet>'.encode())
        self.sheets.append((name[:31], f"$A$1:${last}${n + 1}", 1, wide > 1))
        return n

    def _finish(self) -> None:
        sheets = "".join(f'<sheet name={quoteattr(nm)} sheetId="{i}" r:id="rId{i}"/>'
                         for i, (nm, *_) in enumerate(self.sheets, 1))
        names = "".join(f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
                        f"{escape(_quote_sheet(nm))}!{rng}</definedName>"
                        f'<definedName name="_xlnm.Print_Titles" localSheetId="{i}">'
                        + (f"{escape(_quote_sheet(nm))}!$A:$A," if id_column else "")
                        + f"{escape(_quote_sheet(nm))}!$1:${head}</definedName>"
                        for i, (nm, rng, head, id_column) in enumerate(self.sheets))
        self.zip.writestr("xl/workbook.xml", f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                          f"<workbook {NS} {NS_R}><sheets>{sheets}</sheets>"
                          f"{'<definedNames>' + names + '</definedNames>' if names else ''}</workbook>")
        rels = "".join(f'<Relationship Id="rId{i}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                       f'relationships/worksheet" Target="worksheets/sheet{i}.xml"/>'
                       for i in range(1, len(self.sheets) + 1))
        rels += (f'<Relationship Id="rId{len(self.sheets) + 1}" Type="http://schemas.openxmlformats.org/'
                 'officeDocument/2006/relationships/styles" Target="styles.xml"/>')
        self.zip.writestr("xl/_rels/workbook.xml.rels", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                          '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                          f"{rels}</Relationships>")
        self.zip.writestr("xl/styles.xml", STYLES)
        self.zip.writestr("_rels/.rels", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                          '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                          '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                          'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        overrides = "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
                            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                            for i in range(1, len(self.sheets) + 1))
        self.zip.writestr("[Content_Types].xml", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                          '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                          '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
                          'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
                          '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
                          'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/styles.xml" '
                          'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
                          f"{overrides}</Types>")


PAGE_WIDTH = 190.0  # column-width units on an A4 landscape page at a print of about 7.5 pt (LibreOffice, measured)


def pages_wide(widths: list[float]) -> int:
    """How many pages wide a sheet prints so that its text stays legible, its first column repeated on each."""
    total = sum(widths)
    if total <= PAGE_WIDTH or not widths:
        return 1
    return max(1, math.ceil((total - widths[0]) / (PAGE_WIDTH - widths[0])))


def _quote_sheet(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def _buffer(strings: pa.Array) -> bytes:
    """The concatenated UTF-8 bytes of a string array (its data buffer, without copying row by row)."""
    strings = strings.cast(pa.large_string()) if strings.type != pa.large_string() else strings
    offsets = strings.buffers()[1]
    data = strings.buffers()[2]
    import numpy as np

    off = np.frombuffer(offsets, dtype=np.int64)[strings.offset: strings.offset + len(strings) + 1]
    return data.to_pybytes()[off[0]: off[-1]] if data is not None else b""
