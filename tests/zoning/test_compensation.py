"""Ecosystem service value and priority (zoning.compensation): the factor table, the legend mappings and the
arithmetic against hand-computed figures."""
import numpy as np
import pandas as pd
import pytest

from zoning import compensation as comp
from zoning.errors import ConfigError, DataError
from zoning.legends import LEGENDS

F = comp.load_factors()
D = 3406.50


def test_the_shipped_factor_table_is_xie_2015_table_2():
    assert F.matrix.shape == (14, 11)
    t, s = F.type_keys(), [v.key for v in F.services]
    cell = lambda ty, sv: F.matrix[t.index(ty), s.index(sv)]  # noqa: E731
    # cells checked against the paper's reproductions (README, "Ecological compensation")
    assert cell("water", "hydrological_regulation") == 102.24 and cell("paddy", "water_supply") == -2.63
    assert cell("wetland", "biodiversity") == 7.87 and cell("glacier_snow", "hydrological_regulation") == 7.13
    assert cell("dry_cropland", "food") == 0.85  # one equivalent is cropland's food: the national mean is 1
    assert [v.key for v in F.services if v.market] == ["food", "raw_materials", "water_supply"]
    # the "water dominates": one hm² of water is worth about 5.5 hm² of broadleaf forest
    assert F.matrix[t.index("water")].sum() / F.matrix[t.index("broadleaf")].sum() == pytest.approx(5.5, abs=0.05)
    assert F.equivalent_value == D


@pytest.mark.parametrize("legend", sorted(LEGENDS))
def test_every_shipped_legend_has_a_complete_mapping(legend):
    m = comp.load_types(legend, F)
    assert set(m.shares) | set(m.valueless) == set(LEGENDS[legend].codes())
    assert all(abs(sum(s.values()) - 1) < 1e-9 for s in m.shares.values())


def test_igbp_mapping_follows_the_method():
    m = comp.load_types("igbp", F)
    assert m.shares[14] == {"dry_cropland": 0.5, "shrub_grass": 0.5}
    assert m.valueless == {13} and m.shares[0] == m.shares[17] == {"water": 1.0}
    assert m.shares[8] == {"shrub_grass": 1.0} and m.shares[16] == {"desert": 1.0}


def test_type_areas_spread_codes_and_split_paddy():
    m = comp.load_types("igbp", F)
    codes = [np.array([1, 12, 14, 13, 255.0]), np.array([17.0])]
    fracs = [np.array([0.2, 0.3, 0.2, 0.1, 0.2]), np.array([1.0])]
    ha = comp.type_areas(codes, fracs, np.array([1000.0, 50.0]), m, F, paddy_share=np.array([0.25, np.nan]))
    assert ha.loc[0, "needleleaf"] == pytest.approx(200)
    assert ha.loc[0, "dry_cropland"] == pytest.approx(400 * 0.75)  # 300 of 12 and half of 200 of 14
    assert ha.loc[0, "paddy"] == pytest.approx(400 * 0.25)
    assert ha.loc[0, "shrub_grass"] == pytest.approx(100)
    assert ha.loc[0].sum() == pytest.approx(700)  # built-up (13) and nodata (255) hold no type
    assert ha.loc[1, "water"] == pytest.approx(50) and ha.loc[1].sum() == pytest.approx(50)


def test_service_values_by_hand():
    ha = pd.DataFrame(0.0, index=[0, 1], columns=F.type_keys())
    ha.loc[0, "water"] = 100.0
    ha.loc[1, "broadleaf"], ha.loc[1, "paddy"] = 10.0, 2.0
    v = comp.service_values(ha, F, D)
    assert v.loc[0, "esv_food_yuan"] == pytest.approx(100 * 0.80 * D)
    assert v.loc[0, "esv_hydrological_regulation_yuan"] == pytest.approx(100 * 102.24 * D)
    water_total = 100 * (0.80 + 0.23 + 8.29 + 0.77 + 2.29 + 5.55 + 102.24 + 0.93 + 0.07 + 2.55 + 1.89) * D
    assert v.loc[0, "esv_yuan"] == pytest.approx(water_total)
    assert v.loc[0, "esv_without_water_yuan"] == pytest.approx(0, abs=1e-6)
    assert v.loc[0, "esv_market_yuan"] == pytest.approx(100 * (0.80 + 0.23 + 8.29) * D)
    # paddy's negative water supply is kept: paddies consume water
    assert v.loc[1, "esv_water_supply_yuan"] == pytest.approx((10 * 0.34 + 2 * -2.63) * D)
    assert (v["esv_market_yuan"] + v["esv_nonmarket_yuan"]).to_numpy() == pytest.approx(v["esv_yuan"].to_numpy())


def test_equivalent_value_from_crops_by_hand():
    crops = pd.DataFrame({"crop": ["rice", "wheat", "maize"], "sown_ha": [100.0, 50.0, 50.0],
                          "price_yuan_per_kg": [2.7, 2.3, 2.2], "yield_kg_per_ha": [7000.0, 5500.0, 6000.0]})
    want = (100 * 2.7 * 7000 + 50 * 2.3 * 5500 + 50 * 2.2 * 6000) / 200 / 7
    assert comp.equivalent_value(crops) == pytest.approx(want)
    crops.loc[1, "sown_ha"] = -5
    with pytest.raises(DataError, match="row 2, sown_ha = -5"):
        comp.equivalent_value(crops)


@pytest.mark.parametrize("d", [-1, 0, float("nan"), float("inf"), 1e9, True])
def test_an_absurd_equivalent_value_is_refused(d):
    with pytest.raises(ConfigError, match="not a plausible value of one standard equivalent"):
        comp.check_equivalent_value(d)


def test_a_class_without_a_type_is_named_unless_declared_valueless():
    m = comp.load_types("igbp", F)
    with pytest.raises(DataError, match=r"code\(s\) 99 \(25.0% of the area\) have no ecosystem type"):
        comp.check_mapped(np.array([1, 99, 255.0]), np.array([3.0, 1.0, 0.0]), m, (255,), "lc.tif")
    comp.check_mapped(np.array([1, 255.0]), np.array([3.0, 1.0]), m, (255,), "lc.tif")  # nodata: no value, no error
    own = comp.load_types("igbp", F, 'valueless = [13, 99]\n[codes]\n1 = "needleleaf"\n', "own.toml")
    comp.check_mapped(np.array([1, 99.0]), np.array([3.0, 1.0]), own, (), "lc.tif")


def test_a_bad_type_mapping_names_each_key():
    text = 'valueless = [13]\n[codes]\n1 = "pine"\n2 = {broadleaf = 0.5, shrub = 0.4}\nx = "water"\n13 = "water"\n'
    with pytest.raises(ConfigError) as e:
        comp.load_types("igbp", F, text, "own.toml")
    said = "\n".join(e.value.problems)
    assert "codes.1: unknown type(s) pine" in said and "codes.2: the shares" in said
    assert "codes.x: not an integer" in said and "code(s) 13 are both valueless and mapped" in said
    with pytest.raises(ConfigError, match="no mapping of land-cover codes to ecosystem types for the legend 'mine'"):
        comp.load_types("mine", F)


def test_priority_ranks_by_gdp_else_by_resident_and_classes_by_rank():
    nm = pd.Series([10.0, 40.0, 30.0, 20.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0])
    gdp = pd.Series([1.0] * 9 + [np.nan])
    p = comp.priority(nm, gdp, None)
    assert p["priority_basis"].tolist()[:9] == ["gdp"] * 9 and p.loc[9, "priority_basis"] == ""
    assert p.loc[8, "priority_rank"] == 1 and p.loc[0, "priority_rank"] == 9 and pd.isna(p.loc[9, "priority_rank"])
    # 9 ranked: the first fifth (ranks 1-2), the next three tenths (to rank 5), the rest
    assert p.dropna(subset=["priority_rank"]).set_index("priority_rank")["priority_class"].sort_index().tolist() == \
        ["first", "first", "second", "second", "second", "third", "third", "third", "third"]
    by_pop = comp.priority(nm, None, pd.Series([1.0, 1, 1, 1, 1, 1, 1, 1, 1, 0]))
    assert by_pop.loc[0, "priority_score"] == 10.0 and pd.isna(by_pop.loc[9, "priority_score"])
    assert by_pop.loc[9, "priority_class"] == ""


def test_reasons_name_the_types_that_carry_the_value():
    by = pd.DataFrame({"water": [80.0, 0.0], "broadleaf": [20.0, 0.0], "bare": [0.01, 0.0]})
    r = comp.reasons(by, F)
    assert r[0] == "价值主要来自水系 80%、阔叶 20% · value mostly from water 80%, broadleaf forest 20%"
    assert "no ecosystem service value" in r[1]
