"""Subcommands: classify, check, run, map, model show|check, rules show."""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from zoning import pipeline, rasters as raster_kinds
from zoning.pipeline.config import MAX_MEMORY_MB, MAX_SENSITIVITY_RUNS

from layers.files import DISCARD_EDITS

from .app import cli, handle_errors

crs_option = click.option("--crs", "assume_crs", metavar="CRS",
                          help="CRS for input layers that have none, e.g. EPSG:4490.")
encoding_option = click.option("--encoding", metavar="ENC",
                               help="Text encoding of Shapefile attributes (default: .cpg, else UTF-8, else GBK).")
def overwrite_option(func):
    """``--overwrite`` and ``--discard-edits``, handed to the command as one ``overwrite`` value."""
    @functools.wraps(func)
    def wrapper(*args, overwrite=False, discard_edits=False, **kwargs):
        return func(*args, overwrite=DISCARD_EDITS if discard_edits else overwrite, **kwargs)

    wrapper = click.option("--discard-edits", is_flag=True,
                           help="With --overwrite: replace an earlier zoning output even when it holds work done "
                           "since (the ledger's follow-up edited in QGIS, layers added). Without it that is "
                           "refused, saying what would be lost.")(wrapper)
    return click.option("--overwrite", is_flag=True,
                        help="Replace an earlier zoning output at the target (never other files, never edits made "
                        "since it was written).")(wrapper)
cluster_option = click.option("--cluster", metavar="ADDRESS",
                              help="Run on a Dask cluster: local:N (N single-threaded worker processes here) or "
                              "tcp://HOST:PORT of a running `dask scheduler`. Inputs must be files every worker can "
                              "read at the same path. Same results as without it.")


def id_options(func):
    """--id-field for every layer, and one option per layer that overrides it."""
    for role, what in reversed([("red-line", "red line"), ("farmland", "farmland"),
                                ("urban-boundary", "urban boundary"), ("construction", "construction parcels, e.g. BSM"),
                                ("county", "counties (default: county_id, adcode, code, id)")]):
        func = click.option(f"--{role}-id", f"{role.replace('-', '_')}_id", metavar="F",
                            help=f"Id field of the {what}.")(func)
    return func


def _read_options(id_field, assume_crs, encoding, **ids):
    return pipeline.ReadOptions(id_field, {k[:-3]: v for k, v in ids.items() if v}, assume_crs, encoding)


def parse_rasters(values: tuple[str, ...], hint: str = "--raster", kinds: tuple[str, ...] = ()) -> dict[str, str]:
    out = {}
    for v in values:
        kind, sep, path = v.partition("=")
        if not sep or not path:
            raise click.BadParameter(f"{v!r}: expected KIND=PATH, e.g. landcover=lc.tif", param_hint=hint)
        if kinds and kind not in kinds:
            raise click.BadParameter(f"{kind!r}: expected one of {', '.join(kinds)}", param_hint=hint)
        if kind in out:
            raise click.BadParameter(f"{kind} given twice", param_hint=hint)
        out[kind] = path
    return out


@cli.command()
@click.argument("counties", metavar="COUNTIES")
@click.option("--raster", "rasters", multiple=True, metavar="KIND=PATH", required=True,
              help=raster_kinds.help_text())
@click.option("--points", "points", multiple=True, metavar="population=PATH[:FIELD]",
              help="Populated places with a population field, summed per county (used where the statistics "
              "table and a population raster have no figure; before the built-in census).")
@click.option("--default-places", is_flag=True, help="Without --points, use the embedded GeoNames places of China "
              "(CC-BY 4.0) where nothing else gives a population. Off by default: on the Sichuan sample they lower "
              "the agreement with the official designations (README).")
@click.option("--census/--no-census", default=True, show_default=True,
              help="Use the built-in 2020 census of every county (population, urbanization rate, share of the "
              "employed in agriculture, share aged 65+; NBS figures, MIT-licensed digitisations, README) where "
              "--attributes, a population raster or --points give no figure.")
@click.option("--legend", metavar="NAME|LEGEND.toml", default="igbp", show_default=True,
              help="Land-cover legend: igbp, esa_worldcover, clcd, globeland30, or a TOML file mapping codes to "
              "built_up, cropland, mosaic, natural, water, barren and nodata.")
@click.option("--attributes", metavar="TABLE", help="CSV/XLSX joined on county id: pop_density or population, "
              "gdp_per_capita or gdp, grain_output, urbanization_rate, agri_employment_share, ageing_share (all "
              "optional; percentages as 45 for 45 %). Its figures replace the built-in census's, field by field "
              "and county by county.")
@click.option("--memory-mb", type=click.FloatRange(64, MAX_MEMORY_MB), default=1024, show_default=True, metavar="MB",
              help="Working memory for raster reading: rasters of any size are streamed in pieces of about this "
              "size.")
@click.option("--header-row", type=click.IntRange(min=1), metavar="N",
              help="Row of the --attributes table that holds the column names (default: the first row naming "
              "county_id/adcode/code/id or a known column).")
@click.option("--id-field", metavar="F", help="County id field (default: first of county_id, adcode, code, id).")
@click.option("--name-field", metavar="F", help="County name field (default: first of name, county_name, "
              "district, NAME).")
@click.option("--model", "model_path", metavar="MODEL.toml", help="Model file (default: the shipped model; see "
              "`zoning model show`).")
@click.option("--sensitivity", type=click.IntRange(0, MAX_SENSITIVITY_RUNS), default=0, metavar="N",
              help="Perturb weights and breakpoints N times (at most 10,000) and report each county's stability.")
@click.option("--spread", type=click.FloatRange(0, 1), default=0.10, show_default=True,
              help="Relative perturbation for --sensitivity.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Random seed for --sensitivity.")
@click.option("--quota", metavar="QUOTA.toml", help="Meet provincial or national quotas (shares of land, counties "
              "or residents per zone; locked counties; no lone county) at the least cost to the scores: zone becomes "
              "the quota's answer, zone_unconstrained keeps the model's (README, \"Quota mode\").")
@click.option("-o", "--output", required=True, metavar="OUT.gpkg",
              help="Output GeoPackage (layer `zones`), or a PostGIS schema: postgresql://HOST/DB?schema=NAME.")
@cluster_option
@crs_option
@encoding_option
@overwrite_option
@handle_errors
def classify(counties, rasters, points, default_places, census, legend, attributes, memory_mb, header_row, id_field,
             name_field, model_path, sensitivity, spread, seed, quota,
             output, cluster, assume_crs, encoding, overwrite):
    """Classify county polygons into main function zones.

    Writes layer `zones` with zone, zone_zh, the three scores, margin, rule, review, reason and every indicator.
    """
    path, zones = pipeline.run_classify(counties, parse_rasters(rasters), output, attributes=attributes,
                                        points=parse_rasters(points, "--points"), default_places=default_places,
                                        id_field=id_field, name_field=name_field, model=model_path,
                                        sensitivity=sensitivity, spread=spread, seed=seed, assume_crs=assume_crs,
                                        encoding=encoding, legend=legend, header_row=header_row, memory_mb=memory_mb,
                                        overwrite=overwrite, cluster=cluster, census=census, quota=quota)
    echo_zone_summary(zones)
    from zoning.policy_tables import quota_lines

    for line in quota_lines(zones.attrs.get("info", {}).get("quota"), zones):
        click.echo(line)
    click.echo(f"wrote {path} (layer zones, {len(zones)} counties)")


def echo_zone_summary(zones) -> None:
    from zoning.report import zone_lines

    for line in zone_lines(zones):
        click.echo(line)


@cli.group()
def model():
    """Show or check a classification model (TOML)."""


@model.command("show")
@handle_errors
def model_show():
    """Print the shipped default model as TOML on stdout."""
    from zoning.model import default_text

    sys.stdout.write(default_text())


@model.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@handle_errors
def model_check(file):
    """Validate a model file and list every problem with its key path."""
    m = pipeline.load_model(file)
    click.echo(f"{file}: OK ({m.id}; {sum(len(t) for t in m.functions.values())} terms, {len(m.rules)} rules)")


@cli.command()
@click.option("--red-line", required=True, metavar="PATH", help="Ecological protection red line 生态保护红线.")
@click.option("--farmland", required=True, metavar="PATH", help="Permanent basic farmland 永久基本农田.")
@click.option("--urban-boundary", required=True, metavar="PATH", help="Urban development boundary 城镇开发边界.")
@click.option("--construction", metavar="PATH", help="New-construction change polygons (卫片图斑).")
@click.option("--counties", metavar="PATH", help="County polygons: violations get county_id and county_name.")
@click.option("--zones", metavar="PATH", help="A `zones` layer from `zoning classify`, used as counties when "
              "--counties is not given.")
@click.option("--cropland", metavar="PATH", help="Cultivated land 耕地: the parcel ledger gains cropland_m2/_ha/_mu.")
@click.option("--baseline", metavar="PATH", help="The construction parcels of the earlier survey: violations gain "
              "change (new / expanded / existing) and new_area_m2/_ha/_mu; county_summary new counts and areas.")
@click.option("--baseline-id", metavar="F", help="Id field of the baseline parcels.")
@click.option("--previous", metavar="PREVIOUS.gpkg", help="The output of an earlier `zoning check`, matched on the "
              "ground, not by parcel number: findings on the same ground (same check and control feature) keep "
              "their violation_id and first_detected_on, earlier findings gone from the ground go to layer "
              "rectified, the ledger's follow-up (verdict, status, checked_by, checked_on, remark) goes to the "
              "parcels on the same ground; county_summary gains the rectification rate.")
@click.option("--raster", "rasters", multiple=True, metavar="KIND=PATH",
              help="landcover=PATH and landcover_previous=PATH (two land covers, with --counties): county_summary "
              "gains the built-up gain inside the red line and on farmland.")
@click.option("--legend", metavar="NAME|LEGEND.toml", help="Legend of the land-cover rasters (default igbp).")
@click.option("--no-ledger", "no_ledger", is_flag=True, help="Skip the parcels layer (the parcel ledger): a "
              "smaller, faster output when only the findings are wanted.")
@click.option("--id-field", metavar="F",
              help="Id field of every input layer (default: id, else the feature id; counties: county_id, adcode, "
              "code, id).")
@id_options
@click.option("--rules", "rules_path", metavar="RULES.toml", help="Override the default rules key by key (see "
              "`zoning rules show`).")
@click.option("-o", "--output", required=True, metavar="OUT.gpkg",
              help="Output GeoPackage: layers conflicts, violations, parcels (the parcel ledger), county_summary; or a "
                   "PostGIS schema: postgresql://HOST/DB?schema=NAME.")
@click.option("--report", "report_dir", metavar="DIR", help="Also write violations.csv, report.xlsx, report.html.")
@cluster_option
@crs_option
@encoding_option
@overwrite_option
@handle_errors
def check(red_line, farmland, urban_boundary, construction, counties, zones, cropland, baseline, baseline_id,
          previous, rasters, legend, no_ledger, id_field, rules_path, output, report_dir, cluster, assume_crs,
          encoding, overwrite, **ids):
    """Check the three control lines for conflicts and construction encroachment.

    With --baseline and --previous it is the year-on-year check (卫片执法): what is new since the earlier
    survey, which earlier findings are gone from the ground, with ids and the auditor's follow-up carried over
    by ground (the new survey may number its parcels afresh).
    """
    read = _read_options(id_field, assume_crs, encoding, baseline_id=baseline_id, **ids)
    job = pipeline.CheckJob({"red_line": red_line, "farmland": farmland, "urban_boundary": urban_boundary},
                            construction, counties if counties is not None else zones,
                            "counties" if counties is not None else "zones", read=read, cluster=cluster,
                            extra={"cropland": cropland, "baseline": baseline, "previous": previous,
                                   "ledger": not no_ledger, "legend": legend,
                                   **parse_rasters(rasters, kinds=("landcover", "landcover_previous"))})
    out = pipeline.run_check(job, output, rules_path=rules_path, report_dir=report_dir, overwrite=overwrite)
    res = out["result"]
    echo_check_summary(res.county_summary)
    rect = f", rectified {len(res.rectified)}" if res.rectified is not None else ""
    click.echo(f"wrote {out['output']} (conflicts {len(res.conflicts)}, violations {res.info['violations']}{rect})")
    for p in out["reports"]:
        click.echo(f"wrote {p}")


def echo_check_summary(summary) -> None:
    from zoning.report import check_lines

    for line in check_lines(summary):
        click.echo(line)


@cli.group()
def rules():
    """Show the control-line rules (TOML)."""


@rules.command("show")
@handle_errors
def rules_show():
    """Print the shipped default rules as TOML on stdout."""
    from zoning.rules import default_text

    sys.stdout.write(default_text())


@rules.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@handle_errors
def rules_check(file):
    """Validate a rules file and list every problem with its key path."""
    r = pipeline.load_rules(file)
    click.echo(f"{file}: OK ({r['rules']['id']}@{r['rules']['version']})")


@cli.command()
@click.argument("project", required=False, metavar="[PROJECT.toml]")
@click.option("-o", "--output", "outdir", default="out", show_default=True, metavar="OUTDIR",
              help="Output directory (refused if it exists, unless --overwrite).")
@cluster_option
@overwrite_option
@handle_errors
def run(project, outdir, cluster, overwrite):
    """Run the whole job from a project file: classify, check, GeoPackage, map, reports, run record.

    Without PROJECT.toml it runs the bundled Sichuan sample project. Writes OUTDIR/zoning.gpkg (zones, comparison
    when the project names a reference, red_line, farmland, urban_boundary, conflicts, violations, parcels,
    county_summary), zoning.qgz (a QGIS project with every layer styled), map.html, report/, styles/, run.json
    and zoning.log.
    """
    res = pipeline.run_project(Path(project) if project else None, Path(outdir), overwrite, cluster=cluster)
    echo_zone_summary(res["zones"])
    if res["comparison"] is not None:
        echo_comparison(res["comparison"])
    echo_check_summary(res["check"].county_summary)
    click.echo(f"wrote {res['outdir']}/ (zoning.gpkg, zoning.qgz, map.html, report/, styles/, run.json, zoning.log)")


@cli.command("map")
@click.argument("gpkgs", nargs=-1, required=True, metavar="GPKG|SCHEMA_URI [...]")
@click.option("-o", "--output", required=True, metavar="MAP.html", help="Output HTML file.")
@click.option("--basemap", type=click.Choice(["none", "osm", "tianditu"]), default="none", show_default=True,
              help="Background tiles; 'none' keeps the map fully offline.")
@click.option("--tianditu-key", metavar="KEY", help="Tianditu (天地图) key, for --basemap tianditu.")
@click.option("--simplify", "simplify_m", type=click.FloatRange(min=0), default=100.0, show_default=True,
              metavar="METRES", help="Simplify geometry for display only (0 keeps every vertex).")
@overwrite_option
@handle_errors
def map_cmd(gpkgs, output, basemap, tianditu_key, simplify_m, overwrite):
    """Draw zones, control lines, conflicts and violations into one self-contained, offline HTML map."""
    size = pipeline.run_map(list(gpkgs), output, basemap, tianditu_key, simplify_m, overwrite)
    click.echo(f"wrote {output} ({size / 1e6:.1f} MB)")


@cli.command("compare")
@click.argument("zones", metavar="ZONES")
@click.option("--reference", required=True, metavar="TABLE",
              help="CSV/XLSX of official designations keyed by county id (zone names in English or Chinese).")
@click.option("--reference-id-field", metavar="F", help="Id column (default: first of county_id, adcode, code, id).")
@click.option("--reference-zone-field", metavar="F",
              help="Zone column (default: first of zone, designation, 主体功能区).")
@click.option("--header-row", type=click.IntRange(min=1), metavar="N", help="Row of TABLE with the column names.")
@click.option("--county-id", "county_id", metavar="F", help="Id field of ZONES (default county_id).")
@click.option("-o", "--output", required=True, metavar="OUT.gpkg",
              help="Output GeoPackage (layer `comparison`), or a PostGIS schema: postgresql://HOST/DB?schema=NAME.")
@overwrite_option
@handle_errors
def compare_cmd(zones, reference, reference_id_field, reference_zone_field, header_row, county_id, output,
                overwrite):
    """Compare a `zones` layer with an official scheme: agreement, Cohen's kappa, confusion matrix, disagreements.

    ZONES is the GeoPackage of `zoning classify` or `zoning run` (its layer zones), or PATH:LAYER. Writes layer
    `comparison`
    (styled for QGIS); `zoning map OUT.gpkg -o map.html` draws it offline.
    """
    res = pipeline.run_compare(zones, reference, output, reference_id_field, reference_zone_field, header_row,
                               overwrite, county_id=county_id)
    echo_comparison(res)
    click.echo(f"wrote {output} (layer comparison, {len(res.table)} counties)")


def echo_comparison(res) -> None:
    from zoning.outputs import ZONES

    kappa = f"{res.kappa:.2f}" if res.kappa == res.kappa else "n/a (one class only)"
    click.echo(f"compared {res.compared} counties: agreement {res.agreement:.1%}, Cohen's kappa {kappa}")
    click.echo("confusion (rows: reference, columns: classified)")
    names = list(res.confusion.columns)
    click.echo(f"{'':<18}" + "".join(f"{n:>18}" for n in names))
    for ref, row in res.confusion.iterrows():
        click.echo(f"{ref:<18}" + "".join(f"{int(v):>18}" for v in row))
    dis = res.table[res.table["agrees"].fillna(True) == False]  # noqa: E712 - nullable boolean
    if len(dis):
        click.echo(f"disagreements ({len(dis)}):")
        for r in dis.itertuples():
            click.echo(f"  {r.county_id} {getattr(r, 'name', '')}: {ZONES[r.zone].zh} ≠ "
                       f"{ZONES[r.reference_zone].zh} (reference); {getattr(r, 'top_factors', '')}")
    if res.unmatched:
        click.echo(f"reference ids matching no county ({len(res.unmatched)}): {', '.join(res.unmatched[:20])}")
