"""Write one spooled layer (an Arrow IPC stream on disk) into a GeoPackage in one pass.

Imports only pyarrow and pyogrio, so it also runs as a light child process
(``python -m layers.spoolwrite SPOOL|- GPKG LAYER CRS_WKT``; ``-``: the stream on standard input): pyogrio's
``write_arrow`` does not run in parallel across threads (measured), so the GeoPackage writer writes large layers in
other processes, as the rows come.
"""
from __future__ import annotations

import sys


def write_spool(spool: str, gpkg: str, layer: str, crs_wkt: str | None, new_file: bool) -> None:
    import pyarrow as pa
    from pyogrio.raw import write_arrow

    # read batch by batch (a memory map would count every page read against this process's memory); "-" is the
    # stream on standard input, written by the parent as it computes
    with (pa.PythonFile(sys.stdin.buffer, mode="r") if spool == "-" else pa.OSFile(spool, "rb")) as src:
        write_arrow(pa.ipc.open_stream(src), gpkg, layer=layer, driver="GPKG", geometry_name="geometry",
                    geometry_type="MultiPolygon", crs=crs_wkt or None, layer_options={"SPATIAL_INDEX": "YES"},
                    dataset_options={"VERSION": "1.2"} if new_file else None)


if __name__ == "__main__":
    spool, gpkg, layer, crs = sys.argv[1:5]
    write_spool(spool, gpkg, layer, crs, new_file=True)
