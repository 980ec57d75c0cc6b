"""The ``zoning`` command group (click) and how errors reach the user: exit codes and messages, never a traceback
unless asked. The commands (:mod:`cli.commands`) each call one function of :mod:`zoning.pipeline`."""
from __future__ import annotations

import errno
import functools
import logging
import os
import signal
import sys
import time
import traceback

import click

from zoning.version import __version__
from layers.files import Terminated
from layers.postgis import mask
from zoning.errors import ZoningError

log = logging.getLogger("zoning")

EXIT_CODES = """Exit codes: 0 success; 1 bad input data; 2 usage or configuration error; 3 internal error (a bug:
please report it with --debug output); 4 output cannot be written; 130 interrupted (Ctrl-C); 143 terminated
(SIGTERM); 129 hang-up (SIGHUP). An interrupted run leaves no partial output behind."""


class _Handler(logging.StreamHandler):
    """Plain lines on stderr; on a terminal, records that carry ``progress`` redraw one bar instead."""

    def __init__(self, stream):
        super().__init__(stream)
        self._last: dict = {}
        self._start: dict = {}

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "file_only", False):  # the tables the terminal prints itself, for zoning.log
            return
        prog = getattr(record, "progress", None)
        if prog is not None and not self.stream.isatty():
            # plain lines: every 10 % at most, so logs stay readable
            label, done, total = prog
            step = int(10 * done / total) if total else done
            if self._last.get(label) == step and done != total:
                return
            self._last[label] = step
        if prog is None or not self.stream.isatty():
            if getattr(self, "_bar", False):
                self.stream.write("\n")
                self._bar = False
            return super().emit(record)
        label, done, total = prog
        t0, done0 = self._start.setdefault(label, (time.monotonic(), done))
        elapsed = time.monotonic() - t0
        # a rate over the work seen, once there is a second of it (a first report of a big stage is not a rate)
        rate = f" {(done - done0) / elapsed:,.0f}/s" if elapsed >= 1.0 and done > done0 else ""
        if total:
            width = 30
            fill = int(width * min(done, total) / total)
            eta = f" ETA {_clock((total - done) * elapsed / (done - done0))}" if rate and done < total else ""
            self.stream.write(f"\r{label} [{'#' * fill}{' ' * (width - fill)}] {done:,}/{total:,}{rate}{eta}   ")
        else:
            self.stream.write(f"\r{label} {done:,}{rate}   ")
        self._bar = True
        if total and done >= total:
            self.stream.write("\n")
            self._bar = False
        self.stream.flush()


def _clock(seconds: float) -> str:
    m, sec = divmod(int(seconds + 0.5), 60)
    return f"{m // 60}:{m % 60:02d}:{sec:02d}" if m >= 60 else f"{m}:{sec:02d}"


def _setup_logging(verbose: int, quiet: int) -> None:
    level = logging.INFO - 10 * verbose + 10 * quiet
    level = min(max(level, logging.DEBUG), logging.ERROR)
    handler = _Handler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s" if level <= logging.DEBUG
                                           else "%(message)s"))
    log.handlers[:] = [handler]
    # the logger passes INFO on to the log file of `zoning run` whatever the console shows (-q)
    log.setLevel(min(level, logging.INFO))
    log.propagate = False


def handle_errors(func):
    """Turn known errors into one clear message and an exit code; no traceback unless --debug."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        ctx = click.get_current_context()
        debug = ctx.find_root().params.get("debug", False)
        try:
            return func(*args, **kwargs)
        except ZoningError as exc:
            if debug:
                traceback.print_exc()
            click.echo(f"Error: {mask(str(exc))}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted: no output was written (earlier outputs are left as they were).", err=True)
            ctx.exit(130)
        except Terminated as exc:
            name = signal.Signals(exc.signum).name
            click.echo(f"Stopped by {name}: no output was written (earlier outputs are left as they were).",
                       err=True)
            ctx.exit(128 + exc.signum)
        except BrokenPipeError:  # `zoning … | head`: the reader left; not an error of the run
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(0)
        except MemoryError:
            click.echo("Error: out of memory. Process a smaller area at a time (fewer counties, a lower "
                       "chunk_size in the rules), or use a machine with more memory.", err=True)
            ctx.exit(1)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
                click.echo(f"Error: cannot write {exc.filename or 'the output'}: {exc.strerror}.", err=True)
                ctx.exit(4)
            if exc.errno == errno.ENOMEM:
                _memory(exc, ctx)
            _internal(exc, debug, ctx)
        except (click.exceptions.Exit, click.ClickException):
            raise
        except Exception as exc:  # a bug: say so, keep it short unless asked
            if _out_of_memory(exc):  # a memory limit (ulimit -v, a container's) met inside a library
                _memory(exc, ctx)
            cause = _interrupt_in_chain(exc)
            if cause is not None:  # a library's cleanup failed while an interrupt unwound through it
                name = "Ctrl-C" if isinstance(cause, KeyboardInterrupt) else signal.Signals(cause.signum).name
                click.echo(f"Stopped by {name}: no output was written (earlier outputs are left as they were).",
                           err=True)
                ctx.exit(130 if isinstance(cause, KeyboardInterrupt) else 128 + cause.signum)
            _internal(exc, debug, ctx)
    return wrapper


def _memory(exc: BaseException, ctx) -> None:
    click.echo(f"Error: out of memory ({type(exc).__name__}: {exc}): the process's memory limit (ulimit -v, a "
               "container's limit) is too low for this run. Raise it, or process a smaller area at a time (a lower "
               "chunk_size in the rules, --memory-mb).", err=True)
    ctx.exit(1)


def _out_of_memory(exc: BaseException) -> bool:
    """A library's way of saying memory ran out: GEOS's std::bad_alloc, a thread whose stack could not be
    mapped, an allocation refused."""
    text = str(exc).lower()
    return "bad_alloc" in text or "can't start new thread" in text or "cannot allocate memory" in text


def _interrupt_in_chain(exc: BaseException):
    seen = set()
    e = exc.__context__ or exc.__cause__
    while e is not None and id(e) not in seen:
        if isinstance(e, (KeyboardInterrupt, Terminated)):
            return e
        seen.add(id(e))
        e = e.__context__ or e.__cause__
    return None


def _internal(exc: BaseException, debug: bool, ctx) -> None:
    if debug:
        traceback.print_exc()
    click.echo(f"Internal error: {type(exc).__name__}: {exc}\nThis is a bug in zoning; re-run with --debug "
               "and report the output.", err=True)
    ctx.exit(3)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
             epilog=EXIT_CODES)
@click.version_option(__version__, "--version", prog_name="zoning")
@click.option("-v", "--verbose", count=True, help="More messages on stderr (-vv for debug).")
@click.option("-q", "--quiet", count=True, help="Fewer messages on stderr (warnings and errors only).")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def cli(verbose: int, quiet: int, debug: bool) -> None:
    """zoning: main functional zones (主体功能区) and three control lines (三条控制线) for Chinese counties.

    Input layers are given as PATH, or PATH:LAYER to pick a layer inside a GeoPackage
    (the QGIS form PATH|layername=LAYER works too), or as a PostGIS table:
    postgresql://[USER@]HOST[:PORT]/DB?table=[SCHEMA.]TABLE[&geometry=COL][&where=SQL][&service=NAME]
    (passwords from PGPASSWORD, ~/.pgpass or the service file).
    """
    _setup_logging(verbose, quiet)
