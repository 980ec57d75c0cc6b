"""layers: every file format the tool reads or writes, and every presentation (GeoPackage styles, maps, reports).

Nothing here classifies or checks; the domain lives in :mod:`zoning`. Errors are raised as :mod:`zoning.errors`
classes so the CLI can map them to exit codes.
"""
