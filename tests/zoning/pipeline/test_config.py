"""Options declared once: classify's ClassifyOptions and check's CHECK_OPTIONS refuse what they do not know."""
import pytest

import zoning
from zoning.errors import UsageError


def test_an_unknown_option_of_classify_or_check_names_the_known_ones(sample):
    with pytest.raises(UsageError, match=r"unknown classification option\(s\) censsus; known: .*census"):
        zoning.classify(sample / "counties.gpkg", {"landcover": str(sample / "landcover.tif")}, censsus=False)
    with pytest.raises(UsageError, match=r"unknown check option\(s\) baseline_id; known: construction"):
        zoning.check(sample / "red_line.gpkg", sample / "farmland.gpkg", sample / "urban_boundary.gpkg",
                     baseline_id="BSM")
