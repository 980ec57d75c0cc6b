"""Tables as people keep them, cell by cell."""
import numpy as np
import pandas as pd
import pytest

from zoning.errors import DataError
from zoning.tables import clean_table, parse_number


@pytest.mark.parametrize("text, value", [("1,234,567", 1234567.0), ("１２３４５", 12345.0), ("45.5%", 45.5),
                                         (" 12 ", 12.0), ("1 234", 1234.0), ("", np.nan), ("-", np.nan),
                                         ("-3.5e2", -350.0)])
def test_numbers_as_written(text, value):
    got = parse_number(text)
    assert (np.isnan(got) and np.isnan(value)) or got == value


def test_header_found_below_a_title_and_rows_numbered_as_in_the_file():
    raw = pd.DataFrame([["Title", None], ["county_id", "population"], ["510104", "1,000"], [None, None],
                        ["总计", "1,000"], ["510105", "abc"]])
    t, notes = clean_table(raw, "t.csv", ("population",))
    assert list(t.county_id) == ["510104", "510105"]
    assert t.population.iloc[0] == 1000.0 and np.isnan(t.population.iloc[1])
    assert list(t._row) == [3, 6]
    text = " | ".join(notes)
    assert "blank row(s) 4" in text and "total row(s) 5" in text and "row 6: abc" in text


def test_a_column_named_twice_is_refused_with_both_positions():
    raw = pd.DataFrame([["county_id", "population", " population "], ["510104", "1", "2"]])
    with pytest.raises(DataError, match=r"t.csv: row 1 names column\(s\) 'population' more than once \(columns 2, 3"):
        clean_table(raw, "t.csv", ("population",))
