"""The built-in 2020 census: its sums against the published provincial totals, the folding of statistical zones,
the code changes since, and the join to counties."""
import numpy as np
import pandas as pd
import pytest

from layers.census import builtin_census
from zoning import census

# 第七次全国人口普查公报（第三号）: resident population by province (the county table's independent check)
PROVINCES = {
    "北京市": 21893095, "天津市": 13866009, "河北省": 74610235, "山西省": 34915616, "内蒙古自治区": 24049155,
    "辽宁省": 42591407, "吉林省": 24073453, "黑龙江省": 31850088, "上海市": 24870895, "江苏省": 84748016,
    "浙江省": 64567588, "安徽省": 61027171, "福建省": 41540086, "江西省": 45188635, "山东省": 101527453,
    "河南省": 99365519, "湖北省": 57752557, "湖南省": 66444864, "广东省": 126012510, "广西壮族自治区": 50126804,
    "海南省": 10081232, "重庆市": 32054159, "四川省": 83674866, "贵州省": 38562148, "云南省": 47209277,
    "西藏自治区": 3648100, "陕西省": 39528999, "甘肃省": 25019831, "青海省": 5923957, "宁夏回族自治区": 7202654,
    "新疆维吾尔自治区": 25852345}


@pytest.fixture(scope="module")
def shipped():
    table, changes, sources = builtin_census()
    return census.prepare(table), changes, sources


def test_every_province_sums_to_its_published_total_before_and_after_folding(shipped):
    t, _, _ = shipped
    assert t.groupby("province")["population"].sum().astype(int).to_dict() == PROVINCES
    folded = census.fold_statistical_zones(t)
    assert folded.groupby("province")["population"].sum().astype(int).to_dict() == PROVINCES
    assert int(folded["population"].sum()) == 1_409_778_724  # mainland total without the armed forces
    assert len(folded) < len(t) and not folded["county_id"].duplicated().any()


def test_every_row_names_a_cited_source(shipped):
    t, _, sources = shipped
    assert set(t["source"]) == set(sources) == {"leiii", "tudigong"}
    assert all(s["license"].startswith("MIT") and s["url"].startswith("https://github.com/") for s in sources.values())


def test_a_development_zone_is_counted_in_its_host_as_the_bulletin_does(shipped):
    t, _, _ = shipped
    folded = census.fold_statistical_zones(t).set_index("county_id")
    # 涧西区's 2020 census population "718,807 (含高新区 208,845 人)": its own 509,962 plus 410371 洛阳高新区
    assert folded.loc["410305", "population"] == 718_807
    assert "410371" not in folded.index and "410371" in folded.loc["410305", "folded_zones"]
    # Sichuan's three: 内江, 达州, 巴中 development zones into 市中区, 达川区, 巴州区
    for host, zone in (("511002", "511071"), ("511703", "511771"), ("511902", "511971")):
        own = t.set_index("county_id")
        assert folded.loc[host, "population"] == own.loc[host, "population"] + own.loc[zone, "population"]
    # a zone without a known host stays apart: its people are not put into a county by guess
    assert folded.set_index(folded.index).loc["130272", "statistical_zone"]


def test_counties_of_later_years_join_through_the_code_changes(shipped):
    t, changes, _ = shipped
    joined = census.apply_code_changes(census.fold_statistical_zones(t), changes).set_index("county_id")
    own = t.set_index("county_id")["population"]
    assert joined.loc["350604", "population"] == own["350681"]  # 龙海市 → 龙海区 (2021)
    assert joined.loc["350404", "population"] == own["350402"] + own["350403"]  # 梅列区 + 三元区 → 三元区
    assert joined.loc["410308", "population"] == own["410322"] + own["410306"]  # 孟津县 + 吉利区 → 孟津区
    # Hangzhou 2021: 钱塘区 from parts of 江干区 and 萧山区; 上城区 kept its code and took most of 江干区
    assert joined.loc["330114", "population"] == pytest.approx(0.3508 * own["330104"] + 0.1094 * own["330109"])
    assert joined.loc["330102", "population"] == pytest.approx(own["330102"] + 0.6492 * own["330104"])
    hz = ["330102", "330105", "330106", "330108", "330109", "330110", "330113", "330114"]
    was = ["330102", "330103", "330104", "330105", "330106", "330108", "330109", "330110"]
    assert joined.loc[hz, "population"].sum() == pytest.approx(own[was].sum(), abs=2)  # nobody lost or counted twice
    # a 2010 code of a unit renamed since: 双流县 510122 is 双流区 510116
    assert joined.loc["510122", "population"] == own["510116"]
    assert "older code" in joined.loc["510122", "via"]


def test_match_names_the_counties_without_a_row_and_rates_come_from_counts(shipped):
    t, changes, _ = shipped
    joined = census.apply_code_changes(census.fold_statistical_zones(t), changes)
    ids = pd.Series(["510104", "510104.0", "810001", "350604"], index=[10, 11, 12, 13])
    rows, report = census.match(ids, joined)
    assert report["matched"] == 3 and report["missing"] == ["810001"] and report["via_code_change"] == 1
    stats = census.statistics(rows)
    assert list(stats.index) == [10, 11, 12, 13] and np.isnan(stats.loc[12, "population"])
    r = t.set_index("county_id").loc["510104"]
    assert stats.loc[10, "urbanization_rate"] == pytest.approx(100 * r.urban_population / r.population)
    assert stats.loc[10, "agri_employment_share"] == pytest.approx(100 * r.employed_agri_sample / r.employed_sample)


def test_the_users_figures_win_field_by_field_and_county_by_county():
    built = pd.DataFrame({"urbanization_rate": [50.0, 60.0, np.nan], "ageing_share": [10.0, 11.0, 12.0]})
    user = pd.DataFrame({"urbanization_rate": [55.0, np.nan, 70.0], "gdp": [1.0, 2.0, 3.0]})
    label = pd.Series(["census 2020 (leiii)"] * 3)
    merged, origin = census.overlay(built, user, "stats.csv", label)
    assert merged["urbanization_rate"].tolist() == [55.0, 60.0, 70.0] and merged["gdp"].tolist() == [1.0, 2.0, 3.0]
    assert origin["urbanization_rate"].tolist() == ["stats.csv", "census 2020 (leiii)", "stats.csv"]
    assert census.describe(origin).iloc[1] == "urbanization_rate, ageing_share: census 2020 (leiii)"
