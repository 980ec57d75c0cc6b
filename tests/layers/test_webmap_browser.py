"""The offline map in real headless Chromium (Debian `chromium`) driven by playwright, network blocked."""
import os
import shutil
from pathlib import Path

import geopandas as gpd
import pytest

from layers.webmap import build_map, write_map

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                                reason="Debian chromium not installed (.ci/run installs it)")

EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def map_file(tmp_path_factory, sample):
    import zoning

    d = tmp_path_factory.mktemp("map")
    zones = zoning.classify(sample / "counties.gpkg", {"landcover": str(sample / "landcover.tif"),
                                                                      "dem": str(sample / "dem.tif")})
    zones.loc[zones.county_id == "510104", "name"] = EVIL
    res = zoning.check(*(sample / f"{k}.gpkg" for k in ("red_line", "farmland", "urban_boundary")),
                       construction=sample / "construction.gpkg")
    v = res.violations
    path = d / "map.html"
    write_map(path, build_map({"zones": zones, **res.lines, "conflicts": res.conflicts, "violations": v}))
    return path, zones


def test_no_network_assets_and_no_literal_script(map_file):
    path, _ = map_file
    text = path.read_text(encoding="utf-8")
    assert EVIL not in text
    import re

    assert not re.findall(r"<script[^>]+src=", text)
    assert not re.findall(r"<link[^>]+href=", text)


def test_map_in_headless_chromium(map_file):
    from playwright.sync_api import sync_playwright

    path, zones = map_file
    errors, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.route("**/*", lambda route: (requests.append(route.request.url), route.abort())
                   if not route.request.url.startswith(("file:", "data:")) else route.continue_())
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.as_uri())
        page.wait_for_timeout(1500)
        assert page.evaluate("typeof L") == "object"
        n_paths = page.locator("path.leaflet-interactive").count()
        assert n_paths >= len(zones)
        assert page.locator(".leaflet-control-layers").count() == 1
        legend = page.locator("#zoning-legend").inner_text()
        assert legend.count("城镇化地区") == 1 and "严重 critical" in legend and "永久基本农田" in legend
        control = page.locator(".leaflet-control-layers").inner_text()
        for title in ("Zones", "Red line", "Farmland", "Urban boundary", "Conflicts", "Construction findings"):
            assert title in control
        # click Shiqu county (石渠县), in the far north-west: its popup shows the zone and reason
        shiqu = zones[zones.county_id == "513332"].geometry.iloc[0].representative_point()
        pt = page.evaluate(f"""() => {{ const m = Object.values(window).find(v => v instanceof L.Map);
            const p = m.latLngToContainerPoint([{shiqu.y}, {shiqu.x}]); return [p.x, p.y]; }}""")
        box = page.locator(".leaflet-container").bounding_box()
        page.mouse.click(box["x"] + pt[0], box["y"] + pt[1])
        page.wait_for_timeout(500)
        popup = page.locator(".leaflet-popup-content").inner_text()
        assert "重点生态功能区" in popup and "ecological_priority" in popup
        # the county named like a script tag is shown as text
        jj = zones[zones.county_id == "510104"].geometry.iloc[0].representative_point()
        page.evaluate(f"""() => {{ const m = Object.values(window).find(v => v instanceof L.Map);
            m.setView([{jj.y}, {jj.x}], 12); }}""")
        page.wait_for_timeout(500)
        pt = page.evaluate(f"""() => {{ const m = Object.values(window).find(v => v instanceof L.Map);
            const p = m.latLngToContainerPoint([{jj.y}, {jj.x}]); return [p.x, p.y]; }}""")
        page.mouse.click(box["x"] + pt[0], box["y"] + pt[1])
        page.wait_for_timeout(500)
        assert EVIL in page.locator(".leaflet-popup-content").inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.evaluate("() => { const m = Object.values(window).find(v => v instanceof L.Map); m.closePopup(); }")
        page.goto(path.as_uri())
        page.wait_for_timeout(1000)
        page.screenshot(path=str(ARTIFACTS / "map.png"))
        browser.close()
    assert not errors, errors
    assert not requests, requests


def test_empty_layers_are_drawn_without_error(tmp_path, sample):
    z = gpd.read_file(sample / "counties.gpkg").head(3)
    empty = gpd.GeoDataFrame({"violation_id": [], "severity": []}, geometry=[], crs=4490)
    size = write_map(tmp_path / "m.html", build_map({"zones": z, "violations": empty}))
    text = (tmp_path / "m.html").read_text(encoding="utf-8")
    assert size > 0 and "Construction findings (0)" in text  # listed in the layer control, with no features


def test_the_compensation_choropleth_in_chromium(tmp_path, sample):
    """The value per km² in five classes coloured as the legend says, and a click gives every service's value."""
    from playwright.sync_api import sync_playwright

    from layers.webmap import ESV_COLOURS, esv_breaks
    from zoning.pipeline.compensating import compensate

    comp = compensate(sample / "counties.gpkg", str(sample / "landcover.tif"))
    path = tmp_path / "m.html"
    write_map(path, build_map({"compensation": comp}))
    muli = comp[comp.county_id == "513422"].iloc[0]  # 木里: forest, among the highest values per km²
    want = ESV_COLOURS[int((esv_breaks(comp["esv_per_km2_yuan"]) <= muli["esv_per_km2_yuan"]).sum())]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                                                    "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(path.as_uri())
        page.wait_for_timeout(1000)
        page.locator(".leaflet-control-layers-overlays input").first.check()  # off at first, as the comparison
        page.wait_for_timeout(300)
        fills = page.evaluate("() => [...document.querySelectorAll('path.leaflet-interactive')].map(p => "
                              "p.getAttribute('fill'))")
        assert len(fills) >= len(comp) and set(fills) <= set(ESV_COLOURS) | {"#bbbbbb"} and len(set(fills)) == 5
        legend = page.locator("#zoning-legend").inner_text()
        assert "生态系统服务价值 ESV (万元/km²·a)" in legend
        pt = muli.geometry.representative_point()
        xy = page.evaluate(f"""() => {{ const m = Object.values(window).find(v => v instanceof L.Map);
            const p = m.latLngToContainerPoint([{pt.y}, {pt.x}]); return [p.x, p.y]; }}""")
        box = page.locator(".leaflet-container").bounding_box()
        hit = page.evaluate(f"() => document.elementFromPoint({box['x'] + xy[0]}, {box['y'] + xy[1]})"
                            ".getAttribute('fill')")
        assert hit == want
        page.mouse.click(box["x"] + xy[0], box["y"] + xy[1])
        page.wait_for_timeout(500)
        popup = page.locator(".leaflet-popup-content").inner_text()
        assert "木里藏族自治县" in popup and "水文调节价值(元/年)" in popup and "美学景观价值(元/年)" in popup
        browser.close()
