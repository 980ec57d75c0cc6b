"""The one atomic output protocol, for files and directories.

An output is built under a temporary name beside its target and renamed into place only when complete. What is
already at the target is replaced only with ``overwrite`` and only when the tool recognises it as its own output
(a GeoPackage with a ``zoning_run`` table, an HTML page with zoning's generator tag, or a directory carrying
zoning's marker and nothing else); never when a run's input lies inside it. A lock beside the target makes a second
run on the same target fail clearly; temporary files of a killed run are removed by the next run on that target.
Permissions follow the umask (``mkstemp``/``mkdtemp`` would give 0600/0700).
"""
from __future__ import annotations

import errno
import glob
import json
import os
import shutil
import signal
import socket
import sqlite3
import tempfile
import time
from pathlib import Path

from zoning.errors import OutputError, UsageError

from .edits import edited, file_digest
from .postgis import is_uri, parse

MARKER = ".zoning-output.json"
GENERATOR = '<meta name="generator" content="zoning">'
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


def _is_disk_full(exc: BaseException) -> bool:
    """An error from a writer that means the disk is full (GDAL and SQLite say it in words, not errno)."""
    if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
        return True
    text = str(exc).lower()
    return isinstance(exc, Exception) and ("no space left" in text or "disk is full" in text
                                           or "database or disk is full" in text)


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def _chmod(path: Path, directory: bool) -> None:
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def _marker(path: Path) -> dict:
    """A zoning output folder's marker ({} for anything else)."""
    try:
        return json.loads((Path(path) / MARKER).read_text(encoding="utf-8")) if Path(path).is_dir() else {}
    except (OSError, ValueError):
        return {}


def is_own(path: Path) -> bool:
    """True when ``path`` is an output this tool wrote (so ``--overwrite`` may replace it)."""
    path = Path(path)
    if path.is_dir():
        marker = path / MARKER
        if not marker.is_file():
            return False
        try:
            listed = set(json.loads(marker.read_text(encoding="utf-8")).get("entries", []))
        except (OSError, ValueError):
            return False
        return {p.name for p in path.iterdir()} <= listed | {MARKER}
    if path.suffix.lower() == ".gpkg":
        try:
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                return con.execute("SELECT 1 FROM sqlite_master WHERE name = 'zoning_run'").fetchone() is not None
            finally:
                con.close()
        except sqlite3.Error:
            return False
    if path.suffix.lower() in (".html", ".htm"):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return GENERATOR in f.read(20000)
        except OSError:
            return False
    return False


DISCARD_EDITS = "discard-edits"  # the ``overwrite`` value that also replaces work done on an output since


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def target(spec):
    """An output as given: a PostGIS schema (printed without its password), else a path."""
    return parse(spec, "-o") if is_uri(spec) else Path(spec)


def open_output(spec, overwrite: bool = False, inputs=(), what: str = "output"):
    """Where a run writes its GeoPackage: an :class:`Output` for a path; for a PostGIS schema, a temporary
    GeoPackage published into the schema when the run succeeds (:func:`layers.pgwrite.publishing`)."""
    if is_uri(spec):
        from .pgwrite import publishing

        return publishing(spec, overwrite)
    return Output(Path(spec), overwrite, inputs=inputs, what=what)


def check_target(path: Path, overwrite: bool, inputs=(), what: str = "output", suffix: str | None = None) -> None:
    """Refuse, before any work, a target the run may not replace or cannot write. Raises :class:`OutputError`
    (:class:`UsageError` for a file name whose extension is not ``suffix``: a GeoPackage named ``.shp`` misleads).
    A PostGIS schema (``postgresql://HOST/DB?schema=NAME``) is checked in the database (:mod:`layers.pgwrite`)."""
    if is_uri(path):
        from .pgwrite import check_schema

        return check_schema(path, overwrite)
    path = Path(path)
    if suffix and path.suffix and path.suffix.lower() != suffix:
        raise UsageError(f"-o {path}: the output is a GeoPackage; name it {path.with_suffix(suffix).name} (a "
                         f"{path.suffix} file that holds a GeoPackage misleads whoever opens it). Convert it "
                         f"afterwards if needed: ogr2ogr {path.name} {path.with_suffix(suffix).name} LAYER.")
    path = Path(path)
    try:
        exists = path.exists() or path.is_symlink()
    except OSError as exc:
        raise OutputError(f"cannot access the {what} path {path}: {exc.strerror}; choose another path.") from None
    for i in inputs:
        if i and (_inside(Path(i), path) or Path(i).resolve() == path.resolve()):
            raise OutputError(f"{what} {path} holds the run's input {i}; write the output somewhere else "
                              "(nothing was changed).")
    if exists:
        if not overwrite:
            raise OutputError(f"{path} already exists; pass --overwrite to replace it (it is left untouched).")
        if not is_own(path):
            kind = "a folder holding other files" if path.is_dir() else "a file"
            raise OutputError(f"{path} is {kind} that zoning did not write; --overwrite only replaces earlier zoning "
                              "outputs. Choose a new path or move it away yourself (nothing was changed).")
        lost = [] if overwrite == DISCARD_EDITS else edited(path, _marker(path).get("projects"))
        if lost:
            raise OutputError(f"{path} holds work done since zoning wrote it, which --overwrite would lose: "
                              f"{'; '.join(lost)}. Write to a new path (and carry the ledger's follow-up into it "
                              f"with --previous {path}), or pass --discard-edits to replace it all the same "
                              "(nothing was changed).")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"cannot write {path}: {parent} is a file, not a directory.")
    if not parent.exists():
        raise OutputError(f"output directory {parent} does not exist; create it first.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"output directory {parent} is not writable; choose another path.")


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc), to tell it from a later process that
    reuses its number; None where /proc is not available."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _lock_holder(lock: Path) -> str | None:
    """The live zoning run holding ``lock``, described ("process 123 on host h"), or None when the lock is stale:
    its process is gone, is a later process with the same number, or runs on another host."""
    try:
        text = lock.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    try:
        info = json.loads(text)
        pid, host, started = int(info["pid"]), str(info.get("host", "")), info.get("started")
    except (ValueError, TypeError, KeyError):
        try:  # a lock of an earlier version: the process number alone
            pid, host, started = int(text or 0), socket.gethostname(), None
        except ValueError:
            return None
    if not pid or pid == os.getpid() or host != socket.gethostname() or not _pid_alive(pid):
        return None
    now = _process_start(pid)
    if started is not None and now is not None and str(now) != str(started):
        return None
    if started is None and not _looks_like_zoning(pid):
        return None
    return f"process {pid} on {host}"


def _looks_like_zoning(pid: int) -> bool:
    """Whether process ``pid`` runs the zoning command (``zoning …`` or ``python -m cli …``): for locks of earlier
    versions, which hold the process number alone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return True  # cannot tell: keep the lock
    names = [Path(a).name for a in args[:3]]
    return "zoning" in names or any(a == "-m" and b == "cli" for a, b in zip(args, args[1:]))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Output:
    """``with Output(path, overwrite, directory=...) as tmp: ... write tmp ...`` — then renamed over ``path``.

    On any exception (Ctrl-C and the signals :func:`install_signal_handlers` turns into exceptions included) the
    temporary file or directory is removed and the target stays as it was.
    """

    def __init__(self, path: Path, overwrite: bool = False, directory: bool = False, inputs=(),
                 entries: list[str] | None = None, what: str = "output"):
        self.path = Path(path)
        self._prefix = f".{self.path.name}.zoning-"  # what names this target's temporaries, and only them
        self.overwrite, self.directory, self.inputs, self.what = overwrite, directory, tuple(inputs), what
        self.entries = entries
        self.tmp: Path | None = None
        self._lock: Path | None = None

    def __enter__(self) -> Path:
        check_target(self.path, self.overwrite, self.inputs, self.what)
        parent = self.path.parent if str(self.path.parent) else Path(".")
        self._acquire_lock(parent)
        try:
            self._clear_debris(parent)
            if self.directory:
                self.tmp = Path(tempfile.mkdtemp(prefix=self._prefix, suffix=".part", dir=parent))
                _chmod(self.tmp, True)
            else:
                fd, tmp = tempfile.mkstemp(prefix=self._prefix, suffix=".part" + self.path.suffix,
                                           dir=parent)
                os.close(fd)
                self.tmp = Path(tmp)
                self.tmp.unlink()  # writers create the file themselves
        except BaseException:
            self._release_lock()
            raise
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                try:
                    self._commit()
                except OSError as e:
                    raise disk_error(e, self.path) from None
            elif _is_disk_full(exc):
                raise disk_error(exc, self.path) from None
        finally:
            self._discard()
            self._release_lock()
        return False

    # -- internals
    def _commit(self) -> None:
        assert self.tmp is not None
        if self.directory:
            entries = sorted(p.name for p in self.tmp.iterdir())
            projects = {p.name: file_digest(p) for p in self.tmp.glob("*.qgz")}  # saved in QGIS later: work
            (self.tmp / MARKER).write_text(json.dumps({"tool": "zoning", "written": time.strftime(
                "%Y-%m-%dT%H:%M:%S%z"), "entries": entries, "projects": projects}, indent=1), encoding="utf-8")
            _chmod(self.tmp / MARKER, False)
        else:
            _chmod(self.tmp, False)
        # the target may have changed while we worked: judge it again at the moment of replacement
        if self.path.exists() or self.path.is_symlink():
            if not self.overwrite:
                raise OutputError(f"{self.path} appeared while zoning was running; it is left untouched and the new "
                                  "output was discarded. Run again with another path or --overwrite.")
            if not is_own(self.path):
                raise OutputError(f"{self.path} changed while zoning was running and is no longer a zoning output; "
                                  "it is left untouched and the new output was discarded.")
            if self.path.is_dir():
                trash = Path(tempfile.mkdtemp(prefix=self._prefix, suffix=".old", dir=self.path.parent))
                os.replace(self.path, trash / "x")
                os.replace(self.tmp, self.path)
                shutil.rmtree(trash, ignore_errors=True)
                self.tmp = None
                return
        os.replace(self.tmp, self.path)
        self.tmp = None

    def _discard(self) -> None:
        if self.tmp is None:
            return
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            self.tmp.unlink(missing_ok=True)
            # SQLite journals of a GeoPackage being written
            for extra in ("-journal", "-wal", "-shm"):
                Path(str(self.tmp) + extra).unlink(missing_ok=True)
            for spool in self.tmp.parent.glob(self.tmp.name + ".*.spool"):  # layers spooled by GpkgWriter
                spool.unlink(missing_ok=True)
        self.tmp = None

    def _acquire_lock(self, parent: Path) -> None:
        lock = parent / f".{self.path.name}.lock"
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if lock.is_dir():
                    raise OutputError(f"the lock path {lock} of {self.path} is a folder, not a lock file zoning "
                                      f"wrote; remove it (rmdir {lock}) if no zoning run is active.") from None
                holder = _lock_holder(lock)
                if holder:
                    raise OutputError(f"another zoning run ({holder}) is writing {self.path}; wait for it to "
                                      f"finish or choose another output path (lock file {lock}).") from None
                lock.unlink(missing_ok=True)  # stale: its process is gone, or is not the run that took it
                continue
            except OSError as exc:
                raise disk_error(exc, lock) from None
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                    "started": _process_start(os.getpid())}))
            self._lock = lock
            return
        raise OutputError(f"cannot take the lock {lock} for {self.path}; remove it if no zoning run is active.")

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.unlink(missing_ok=True)
            self._lock = None

    def _clear_debris(self, parent: Path) -> None:
        # we hold the lock, so temporaries of this target's name belong to a run that was killed
        # only this target's own temporaries: `.out.zoning-…` is never another target's (`.out.gpkg.zoning-…`
        # belongs to out.gpkg, which a run writing both `out` and `out.gpkg` holds at the same time)
        for p in parent.glob(f"{glob.escape(self._prefix)}*"):
            if not (p.name.endswith((".part", ".old")) or ".part" in p.name):
                continue
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def disk_error(exc: BaseException, path: Path) -> OutputError:
    if not isinstance(exc, OSError) or exc.errno is None:
        return OutputError(f"cannot write {path}: the disk is full ({exc}). Nothing was replaced; free space or "
                           "choose another path.")
    reason = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exhausted",
              errno.EROFS: "the file system is read-only", errno.EFBIG: "the file is too large for the file system",
              }.get(exc.errno, exc.strerror or str(exc))
    return OutputError(f"cannot write {path}: {reason}. Nothing was replaced; free space or choose another path.")


def write_text(path: Path, text: str) -> None:
    """Write a text file inside an output being built (the caller's :class:`Output` makes it atomic)."""
    Path(path).write_text(text, encoding="utf-8")


class Terminated(BaseException):
    """SIGTERM or SIGHUP: unwinds like Ctrl-C so every :class:`Output` cleans up."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum, frame):
    raise Terminated(signum)


def install_signal_handlers() -> None:
    """Treat SIGTERM (``timeout``, batch schedulers) and SIGHUP (closed terminal) like Ctrl-C."""
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, _raise_terminated)
