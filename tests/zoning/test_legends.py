"""Land-cover legends and raster value checks."""
import numpy as np
import pytest

from zoning.errors import ConfigError, DataError
from zoning.legends import GROUPS, LEGENDS, dem_metres, landcover_groups, load_legend


def test_igbp_codes_map_to_groups_and_fill_is_nodata():
    data = np.array([[13.0, 12.0, 14.0], [0.0, 17.0, 255.0]])
    g, warns = landcover_groups(data, LEGENDS["igbp"], "lc.tif")
    assert g[0].tolist() == [GROUPS["built_up"], GROUPS["cropland"], GROUPS["mosaic"]]
    assert g[1, :2].tolist() == [GROUPS["water"]] * 2 and np.isnan(g[1, 2])
    assert any("255" in w for w in warns)


def test_a_few_unknown_codes_warn_many_fail_and_the_legend_is_guessed():
    data = np.full((10, 10), 10.0)  # 10 is IGBP forest and ESA tree cover
    data[0, 0] = 99
    _, warns = landcover_groups(data, LEGENDS["igbp"], "lc.tif")
    assert "99 (1.0%)" in warns[0]
    data[:5] = 50  # ESA built-up
    with pytest.raises(DataError, match="--legend esa_worldcover") as e:
        landcover_groups(np.where(data == 99, 10, data), LEGENDS["igbp"], "lc.tif")
    assert "50 (50.0%)" in str(e.value)


def test_legend_toml_is_validated_by_key():
    lg = load_legend("my.toml", 'name = "local"\nbuilt_up = [1]\ncropland = [2]\nnodata = [0]\n')
    assert lg.groups == {1: "built_up", 2: "cropland"} and lg.nodata == (0,)
    with pytest.raises(ConfigError) as e:
        load_legend("bad.toml", 'builtup = [1]\ncropland = [1, "x"]\n')
    assert "builtup: unknown key" in str(e.value) and "cropland: expected a list of integer codes" in str(e.value)


def test_dem_fill_units_and_plausibility():
    m, warns = dem_metres(np.array([100.0, -32768.0, 3280.84]), "dem.tif", "ft")
    assert np.isnan(m[1]) and m[2] == pytest.approx(1000.0, rel=1e-6) and len(warns) == 2
    with pytest.raises(DataError, match="not plausible metres"):
        dem_metres(np.array([100.0, 12000.0]), "dem.tif")
