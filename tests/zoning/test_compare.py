"""Agreement with an official scheme: kappa by hand, zone names as documents write them."""
import numpy as np
import pandas as pd
import pytest

from zoning.compare import cohen_kappa, compare, normalise_zones
from zoning.errors import DataError


def test_kappa_known_answer():
    # po = 0.7; pe = (25·30 + 25·20) / 50² = 0.5; kappa = (0.7 − 0.5) / 0.5 = 0.4
    assert cohen_kappa(np.array([[20, 5], [10, 15]])) == pytest.approx(0.4)
    assert np.isnan(cohen_kappa(np.zeros((3, 3))))


def test_chinese_and_english_names_and_unknown_values():
    s = pd.Series(["城市化地区", "重点开发区域", "农产品主产区", "重点生态功能区", "ecological", "Urbanization"])
    assert list(normalise_zones(s, "t")) == ["urbanization", "urbanization", "grain_production", "ecological",
                                             "ecological", "urbanization"]
    with pytest.raises(DataError, match="'禁止开发区域'"):
        normalise_zones(pd.Series(["禁止开发区域", "ecological"]), "t")


def test_compare_counts_and_lists_unmatched_ids():
    zones = pd.DataFrame({"county_id": ["1", "2", "3", "4"], "zone": ["urbanization", "ecological", "ecological",
                                                                      "grain_production"]})
    ref = pd.DataFrame({"county_id": ["1", "2", "3", "9"], "reference_zone": ["urbanization", "ecological",
                                                                              "grain_production", "ecological"]})
    res = compare(zones, ref)
    assert res.compared == 3 and res.agreement == pytest.approx(2 / 3) and res.unmatched == ["9"]
    assert res.table["agrees"].tolist()[:3] == [True, True, False] and pd.isna(res.table["agrees"].iloc[3])
    assert res.confusion.loc["grain_production", "ecological"] == 1
