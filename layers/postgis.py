"""PostGIS tables as inputs and a PostGIS schema as the output, through ADBC (Arrow both ways, with libpq inside the
wheel: no GDAL PostgreSQL driver, and an offline install needs nothing else).

An input is ``postgresql://[USER@]HOST[:PORT]/DBNAME?table=[SCHEMA.]TABLE`` with optional ``geometry=COLUMN``,
``where=FILTER`` and ``service=NAME``; an output ``postgresql://HOST/DBNAME?schema=NAME``. Passwords come from
``PGPASSWORD``, ``~/.pgpass`` or the service file as libpq reads them; one written in the URI works but is never
shown: these objects print without it, and :func:`mask` takes it out of any text.

Why ADBC rather than psycopg 3's binary COPY (``benchmarks/bench_postgis_io.py``): both stream, but ADBC hands over
Arrow batches built in C++ on either side, where psycopg returns Python rows; geometry travels as WKB in both.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import pandas as pd

from zoning.errors import DataError, UsageError

log = logging.getLogger("zoning")
SCHEMES = ("postgresql://", "postgres://")
CONNECT_TIMEOUT_S = 10
OWN_PARAMS = ("table", "geometry", "where", "schema")
WKB = "zoning_wkb"  # the geometry as WKB in a query's result
FID = "zoning_fid"
_SECRET = re.compile(r"(postgres(?:ql)?://[^:/@\s]*):[^@\s/]*@", re.IGNORECASE)


def is_uri(spec) -> bool:
    """A PostGIS URI (or an object parsed from one)."""
    if isinstance(spec, (PgTable, PgSchema)):
        return True
    return isinstance(spec, str) and spec.strip().lower().startswith(SCHEMES)


def mask(text: str) -> str:
    """``text`` with any password written in a PostgreSQL URI replaced by ``***``."""
    return _SECRET.sub(r"\1:***@", str(text))


class MaskPasswords(logging.Filter):
    """Takes a password written in a PostgreSQL URI out of every record of the ``zoning`` logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "://" in text:
            record.msg, record.args = mask(text), ()
        return True


if not any(isinstance(f, MaskPasswords) for f in log.filters):
    log.addFilter(MaskPasswords())


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def literal(value: str) -> str:
    """A quoted SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


@dataclass(frozen=True)
class _Where:
    conninfo: str = field(repr=False)  # what libpq connects with, password included
    shown: str  # the URI as messages give it: without the password
    dbname: str

    def __str__(self) -> str:
        return self.shown

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.shown!r})"


@dataclass(frozen=True, repr=False)
class PgTable(_Where):
    """An input table."""

    schema: str | None = None
    table: str = ""
    geometry: str | None = None
    where: str | None = None

    @property
    def qualified(self) -> str:
        return f"{ident(self.schema)}.{ident(self.table)}" if self.schema else ident(self.table)


@dataclass(frozen=True, repr=False)
class PgSchema(_Where):
    """An output schema."""

    schema: str = ""


def parse(spec, role: str = "input"):
    """A :class:`PgTable` (``table=``) or :class:`PgSchema` (``schema=``) from a URI; a usage error names what is
    missing."""
    if isinstance(spec, (PgTable, PgSchema)):
        return spec
    raw = str(spec).strip()
    u = urlsplit(raw)
    params = dict(parse_qsl(u.query, keep_blank_values=True))
    own = {k: params.pop(k) for k in OWN_PARAMS if k in params}
    dbname = u.path.lstrip("/") or params.get("dbname", "")
    if not (u.hostname or params.get("service") or params.get("host")):
        raise UsageError(f"{role} {mask(raw)}: no host; write postgresql://HOST[:PORT]/DBNAME?table=… (or "
                         "?service=NAME for an entry of pg_service.conf)")
    user = f"{quote(u.username, safe='')}@" if u.username else ""
    host = (f"[{u.hostname}]" if u.hostname and ":" in u.hostname else (u.hostname or "")) + \
        (f":{u.port}" if u.port else "")
    secret = f"{quote(u.username or '', safe='')}:{quote(u.password, safe='')}@" if u.password is not None else user
    shown_q = urlencode({k: v for k, v in {**own, **params}.items() if k != "connect_timeout"}, safe="./:,")
    shown = f"postgresql://{user}{host}/{dbname}" + (f"?{shown_q}" if shown_q else "")
    conninfo = f"postgresql://{secret}{host}/{quote(dbname, safe='')}?" + \
        urlencode({"connect_timeout": str(CONNECT_TIMEOUT_S), "application_name": "zoning", **params})
    if "schema" in own and "table" not in own:
        if not own["schema"]:
            raise UsageError(f"{role} {shown}: schema= is empty; name the schema to write, e.g. ?schema=zoning_2026")
        return PgSchema(conninfo, shown, dbname, own["schema"])
    table = own.get("table", "")
    if not table:
        raise UsageError(f"{role} {shown}: name the table, e.g. {shown.split('?')[0]}?table=public.red_line "
                         "(an output names the schema instead: ?schema=NAME)")
    schema, _, name = table.rpartition(".")
    return PgTable(conninfo, shown, dbname, schema or None, name, own.get("geometry") or None,
                   own.get("where") or None)


def reason(exc, where: _Where | None = None) -> str:
    """A driver's message without its prefixes, and without any password."""
    text = str(exc)
    for prefix in ("IO: [libpq] Failed to connect: ", "IO: [libpq] ", "INVALID_DATA: [libpq] ",
                   "INVALID_ARGUMENT: [libpq] ", "UNKNOWN: [libpq] "):
        text = text.replace(prefix, "")
    text = re.sub(r"\s+", " ", re.sub(r"\. SQLSTATE: \w+", "", text)).strip().rstrip(".")
    return mask(text)


def connect(where: _Where, role: str, error=DataError):
    """An ADBC connection (autocommit off: everything a run writes is one transaction). Unreachable servers are
    answered within :data:`CONNECT_TIMEOUT_S`; a wrong password, a missing database: ``error`` naming them."""
    import adbc_driver_postgresql.dbapi as dbapi
    from adbc_driver_manager import Error

    try:
        return dbapi.connect(where.conninfo)
    except Error as exc:
        why = reason(exc, where)
        hint = "Check that the server runs and is reachable from here (host, port, firewall)."
        if "password" in why:
            hint = "Check the user and password (PGPASSWORD, ~/.pgpass or the service file)."
        elif "does not exist" in why:
            hint = "Check the database name."
        raise error(f"{role} {where}: cannot connect to database {where.dbname!r}: {why}. {hint}") from None


def _query(con, sql: str, where: _Where, role: str, error, take):
    """``take(cursor)`` after one statement; a failure (the connection dropped mid-run, a refused statement) is
    ``error`` naming the table, never the password."""
    from adbc_driver_manager import Error

    try:
        with con.cursor() as cur:
            cur.execute(sql)
            return take(cur)
    except (Error, OSError) as exc:
        raise error(f"{role} {where}: {reason(exc, where)}. Nothing was written.") from None


def run(con, sql: str, where: _Where, role: str, error=DataError) -> list:
    """The rows of one statement (none for a command)."""
    return _query(con, sql, where, role, error, lambda cur: cur.fetchall() if cur.description else [])


def arrow(con, sql: str, where: _Where, role: str):
    """A query's result as an Arrow table."""
    return _query(con, sql, where, role, DataError, lambda cur: cur.fetch_arrow_table())


def batches(con, sql: str, where: _Where, role: str):
    """A query's result as Arrow record batches, streamed."""
    from adbc_driver_manager import Error

    try:
        with con.cursor() as cur:
            cur.execute(sql)
            yield from cur.fetch_record_batch()
    except (Error, OSError) as exc:  # a connection lost mid-stream comes as OSError from the reader
        raise DataError(f"{role} {where}: reading stopped: {reason(exc, where)}. Nothing was written.") from None


def require_postgis(con, where: _Where, role: str, error=DataError) -> None:
    if not run(con, "SELECT 1 FROM pg_extension WHERE extname = 'postgis'", where, role, error):
        raise error(f"{role} {where}: database {where.dbname!r} has no PostGIS. Its owner can add it with "
                    "CREATE EXTENSION postgis;")


def to_frame(table, crs, source: str, layer: str, offset: int = 0):
    """A GeoDataFrame from an Arrow table holding the geometry as WKB in :data:`WKB`."""
    import geopandas as gpd
    import pyarrow as pa
    import shapely

    geoms = shapely.from_wkb(table.column(WKB).to_numpy(zero_copy_only=False))
    rest = table.drop_columns([c for c in (WKB, FID) if c in table.column_names])
    for i, f in enumerate(rest.schema):  # numeric columns arrive as decimals or text: numbers here
        if pa.types.is_decimal(f.type):
            rest = rest.set_column(i, f.name, rest.column(i).cast(pa.float64()))
        elif isinstance(f.type, pa.ExtensionType):
            rest = rest.set_column(i, f.name, rest.column(i).cast(f.type.storage_type).cast(pa.string()))
    df = rest.to_pandas()
    gdf = gpd.GeoDataFrame(df, geometry=geoms, crs=crs)
    gdf.index = pd.RangeIndex(offset, offset + len(gdf))
    gdf.attrs.update(source=source, encoding="UTF-8", layer=layer)
    return gdf

