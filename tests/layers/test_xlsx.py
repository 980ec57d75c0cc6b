"""The fast XLSX writer, read back by openpyxl (as Excel and LibreOffice users get it)."""
import openpyxl
import pyarrow as pa
import pytest

from layers import xlsx


def test_values_types_and_layout_survive(tmp_path):
    batch = pa.RecordBatch.from_pydict({
        "violation_id": ['=HYPERLINK("http://x","y")', "a&b <c>", None],
        "area_mu": [1.23456, float("nan"), 3.0],
        "overlap": [True, False, None],
        "count": [1, 2, 3],
        "note": ["bad\x01char", "中文 说明", " lead"],
    })
    path = tmp_path / "r.xlsx"
    with xlsx.Workbook(path) as wb:
        n = wb.sheet("建设占用生态保护红线 with a name longer than thirty-one", batch.schema.names,
                     ["编号 id", "面积(亩) area (mu)", "重叠", "数量", "说明"], [batch], [40, 12, 8, 8, 20],
                     {"area_mu": "area"})
    assert n == 3
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["建设占用生态保护红线 with a name longer t"] and len(book.sheetnames[0]) == 31
    ws = book.worksheets[0]
    assert [c.value for c in ws[1]] == ["编号 id", "面积(亩) area (mu)", "重叠", "数量", "说明"]
    assert ws["A2"].value.startswith("=HYPERLINK") and ws["A2"].data_type == "s"  # text, never a formula
    assert ws["A3"].value == "a&b <c>" and ws["A4"].value is None
    assert ws["B2"].value == pytest.approx(1.23456) and ws["B2"].number_format == "#,##0.00"
    assert ws["B3"].value is None  # NaN left empty
    assert ws["C2"].value is True and ws["C3"].value is False
    assert ws["D4"].value == 3
    assert ws["E2"].value == "badchar" and ws["E3"].value == "中文 说明" and ws["E4"].value == " lead"
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == "A1:E4"
    assert ws.column_dimensions["A"].width == 40


def test_rows_beyond_the_excel_limit_are_cut(tmp_path, monkeypatch):
    monkeypatch.setattr(xlsx, "MAX_ROWS", 5)
    batches = [pa.RecordBatch.from_pydict({"x": list(range(i, i + 3))}) for i in (0, 3, 6)]
    with xlsx.Workbook(tmp_path / "r.xlsx") as wb:
        assert wb.sheet("s", ["x"], ["x"], batches, [8]) == 5
    ws = openpyxl.load_workbook(tmp_path / "r.xlsx")["s"]
    assert [ws.cell(r, 1).value for r in range(2, 7)] == [0, 1, 2, 3, 4] and ws.max_row == 6
