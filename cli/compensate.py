"""``zoning compensate``: ecosystem service value and ecological compensation priority per county."""
from __future__ import annotations

import click

from zoning.pipeline.config import MAX_MEMORY_MB

from .app import cli, handle_errors
from .commands import parse_rasters, cluster_option, crs_option, encoding_option, overwrite_option


@cli.command(epilog="""\b
IGBP (MODIS) codes → ecosystem types (the default; --show prints any legend's):
  1, 3 → 针叶 needleleaf; 2, 4 → 阔叶 broadleaf; 5 → 针阔混交 mixed forest;
  6, 7 → 灌木 shrub; 8, 9 → 灌草丛 shrub-grass; 10 → 草原 steppe; 11 → 湿地 wetland;
  12 → 旱地 dry cropland (paddy_share in --attributes moves that share to 水田 paddy);
  13 → no value; 14 → ½ 旱地 + ½ 灌草丛; 15 → 冰川积雪; 16 → 荒漠 desert; 0, 17 → 水系 water.""")
@click.argument("counties", metavar="COUNTIES", required=False)
@click.option("--raster", "rasters", multiple=True, metavar="landcover=PATH",
              help="The land-cover raster (read coverage-weighted at true area, streamed).")
@click.option("--legend", metavar="NAME|LEGEND.toml", default="igbp", show_default=True,
              help="Land-cover legend: igbp, esa_worldcover, clcd, globeland30 (each with a shipped mapping to "
              "ecosystem types), or a legend TOML file (then give --types).")
@click.option("--types", metavar="TYPES.toml", help="Your own mapping of land-cover codes to the 14 ecosystem types "
              "(codes = {12 = \"paddy\", 14 = {dry_cropland = 0.5, shrub_grass = 0.5}}, valueless = [13]); see --show.")
@click.option("--attributes", metavar="TABLE", help="CSV/XLSX joined on county id: population (else the 2020 "
              "census), gdp or gdp_per_capita (the priority score is then per yuan of GDP), paddy_share (percent of "
              "cultivated land that is paddy), fiscal_gap (yuan).")
@click.option("--header-row", type=click.IntRange(min=1), metavar="N",
              help="Row of the attribute table's header (default: found).")
@click.option("--zones", metavar="ZONES", help="The zones of `zoning classify` / `zoning run`: each county's zone.")
@click.option("--red-line", metavar="PATH", help="Ecological protection red line: its area and share per county.")
@click.option("--equivalent-value", type=float, metavar="YUAN",
              help="Value of one standard equivalent D, yuan/hm² a year (default 3,406.50: Xie et al. 2015, 2010 "
              "national).")
@click.option("--crops", metavar="TABLE", help="Instead of --equivalent-value: a table of the main grain crops "
              "(crop, sown_ha, price_yuan_per_kg, yield_kg_per_ha); D = 1/7 · Σ sown·price·yield / Σ sown.")
@click.option("--transfer-coefficient", type=float, metavar="K", help="With fiscal_gap in --attributes: "
              "transfer_estimate_yuan = fiscal_gap × K, an estimate (the central formula is not published).")
@click.option("--census/--no-census", default=True, show_default=True,
              help="Use the built-in 2020 census population where --attributes gives none.")
@click.option("--memory-mb", type=click.FloatRange(64, MAX_MEMORY_MB), default=1024, show_default=True,
              metavar="MB", help="Working memory for reading the raster.")
@click.option("--id-field", metavar="F", help="County id field (default: county_id, adcode, code, id).")
@click.option("--name-field", metavar="F", help="County name field.")
@click.option("--show", is_flag=True, help="Print the factor table and the legend's mapping to ecosystem types, "
              "then exit.")
@click.option("-o", "--output", metavar="OUT.gpkg",
              help="Output GeoPackage (layer `compensation`), or a PostGIS schema: postgresql://HOST/DB?schema=NAME.")
@cluster_option
@crs_option
@encoding_option
@overwrite_option
@handle_errors
def compensate(counties, rasters, legend, types, attributes, header_row, zones, red_line, equivalent_value, crops,
               transfer_coefficient, census, memory_mb, id_field, name_field, show, output, cluster, assume_crs,
               encoding, overwrite):
    """Ecosystem service value (生态系统服务价值) per county and service, and who to compensate first.

    Writes layer `compensation`: esv_yuan and one esv_<service>_yuan per service (Xie et al. 2015 equivalent
    factors), the market and non-market parts, the value without water, per km² and per resident, the priority
    score, rank and class, red-line and ecological land, and a reason naming the types that carry the value.
    """
    from zoning.policy_tables import method_lines, ranked_lines
    from zoning.pipeline import compensating

    opts = dict(legend=legend, types=types, equivalent_value=equivalent_value, crops=crops)
    if show:
        factors, tmap, _, d, d_source = compensating.method(compensating.CompensateOptions.of(opts))
        click.echo("\n".join(method_lines(factors, tmap, d, d_source)))
        return
    if not counties:
        raise click.UsageError("Missing argument 'COUNTIES'.")
    if not output:
        raise click.UsageError("Missing option '-o' / '--output'.")
    r = parse_rasters(rasters, "--raster", ("landcover",))
    if "landcover" not in r:
        raise click.UsageError("Missing option '--raster landcover=PATH'.")
    path, layer = compensating.run_compensate(
        counties, r["landcover"], output, overwrite=overwrite, attributes=attributes, header_row=header_row,
        zones=zones, red_line=red_line, transfer_coefficient=transfer_coefficient, census=census,
        memory_mb=memory_mb, id_field=id_field, name_field=name_field, cluster=cluster, assume_crs=assume_crs,
        encoding=encoding, **opts)
    click.echo("\n".join(ranked_lines(layer)))
    click.echo(f"wrote {path} (layer compensation, {len(layer)} counties)")
