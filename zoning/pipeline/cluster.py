"""Dask wiring: connect to a cluster (``local:N`` or ``tcp://HOST:PORT``), check that every worker can read the
inputs, and run tasks with their results back in submission order.

Tasks are pure functions of their job (they read inputs, never write): when a worker dies, Dask runs its tasks
again elsewhere and the output is the same. Everything is written by the client, through :mod:`layers`.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import time
from collections import deque
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..errors import DataError, UsageError

log = logging.getLogger("zoning")
POLL_S = 2.0  # how often a wait for a task looks at the workers' state
PAUSED_GRACE_S = 20.0  # every worker paused this long: memory will not come back by itself
CONNECT_TIMEOUT_S = 15  # an unreachable scheduler is reported well within 30 s
_LOCAL = re.compile(r"local(?::(\d+))?")


def parse_address(address: str) -> tuple[str, int | str]:
    """``("local", N)`` or ``("remote", "tcp://HOST:PORT")``; anything else is a usage error."""
    a = str(address).strip()
    m = _LOCAL.fullmatch(a)
    if m:
        n = int(m.group(1) or os.cpu_count() or 1)
        if n < 1:
            raise UsageError(f"--cluster {address}: a local cluster needs at least 1 worker (local:N, N ≥ 1); or "
                             "give the address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786")
        return "local", n
    if re.fullmatch(r"(tcp|tls|ucx)://[^\s/:]+(:\d+)?/?", a):
        return "remote", a
    raise UsageError(f"--cluster {address!r}: expected local:N (N single-threaded worker processes on this "
                     "machine) or the address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786")


def name(address) -> str:
    """The address as the run's record gives it (a client stands for the cluster it is connected to)."""
    return address if isinstance(address, str) else str(getattr(address, "scheduler_info", lambda: {})().get(
        "address", "client"))


PROTOCOL_HINTS = {"tls": "tls:// needs certificates in Dask's configuration (distributed.comm.tls: ca-file, "
                         "client.cert, client.key) on the client and every worker. ",
                  "ucx": "ucx:// needs the ucx-py package (UCX) installed on the client and every worker. "}


@contextlib.contextmanager
def connect(address, timeout: float = CONNECT_TIMEOUT_S):
    """A ``dask.distributed.Client`` for ``address``, closed (and a local cluster stopped) on exit. A client
    given instead of an address is used as it is and left open (one cluster for every step of ``zoning run``)."""
    if not isinstance(address, str):
        yield address
        return
    kind, where = parse_address(address)
    from dask.distributed import Client, LocalCluster

    cluster = None
    if kind == "local":
        # one thread per worker process: GEOS, GDAL and pyogrio then never wait on each other's GIL
        cluster = LocalCluster(n_workers=where, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
        client = Client(cluster)
    else:
        try:
            client = Client(where, timeout=f"{timeout}s")
        except (OSError, TimeoutError) as exc:
            raise DataError(f"cannot reach the Dask scheduler at {where} within {timeout:.0f} s ({exc}). Start "
                            f"one with `dask scheduler` and workers with `dask worker {where}`, check the "
                            "address and the firewall, or use --cluster local:N.") from None
        except Exception as exc:  # noqa: BLE001 - Dask's protocols fail in their own ways before connecting
            raise UsageError(f"--cluster {where}: cannot open a connection ({type(exc).__name__}: {exc}). "
                             + PROTOCOL_HINTS.get(where.split("://")[0], "") + "Or use tcp://HOST:PORT or "
                             "local:N.") from None
    try:
        if kind == "remote":
            _refuse_paused(client, where)  # else waited for in vain: paused workers do not count as ready
            try:
                client.wait_for_workers(1, timeout=timeout)
            except (OSError, TimeoutError):
                _refuse_paused(client, where)
                raise DataError(f"the Dask scheduler at {where} has no workers; start some with "
                                f"`dask worker {where}`.") from None
        _refuse_paused(client, where)
        n = len(client.scheduler_info(n_workers=-1)["workers"])
        log.info("cluster %s: %d worker(s)", where if kind == "remote" else f"local, {where} processes", n)
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _refuse_paused(client, where) -> None:
    """Workers paused by their memory limit take no task: a run would wait for ever, or fail inside Dask."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    paused = {a: w for a, w in workers.items() if str(w.get("status", "")).endswith("paused")}
    if workers and len(paused) == len(workers):
        said = [f"worker {a}: {w.get('metrics', {}).get('memory', 0) / 2**20:,.0f} MB in use of a "
                f"{(w.get('memory_limit') or 0) / 2**20:,.0f} MB limit" for a, w in sorted(paused.items())]
        raise DataError(f"every worker of the Dask cluster at {where} is paused for lack of memory: a worker pauses "
                        "above 80 % of its memory limit, and zoning's libraries alone take about 250 MB. Start the "
                        "workers with more memory (`dask worker --memory-limit 2GB`, or no limit); nothing was "
                        "written", said)


def scatter(client, data, where: str = "the cluster"):
    """``data`` sent once to every worker (the plans every task reads)."""
    try:
        return client.scatter(data, broadcast=True, hash=False)
    except ValueError:  # Dask's replicate refuses when workers paused after the check at connection
        _refuse_paused(client, where)
        raise


SIDECARS = (".dbf", ".shx", ".prj", ".cpg")  # a shapefile is these files too


def fingerprint(path: str, block: int = 1 << 16, samples: int = 16) -> tuple[int, str]:
    """The size and a digest of a file's first and last MB and of ``samples`` blocks spread between: cheap on
    files of gigabytes, and different for another year's copy of a layer."""
    size = os.path.getsize(path)
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        starts = [0, max(size - (1 << 20), 0)] + [size * i // (samples + 1) for i in range(1, samples + 1)]
        for start, length in zip(starts, [1 << 20, 1 << 20] + [block] * samples):
            f.seek(start)
            h.update(f.read(length))
    return size, h.hexdigest()


def _fingerprints(paths: list[str]) -> dict[str, object]:
    """Runs on a worker (and on the client): each input's :func:`fingerprint`, or why it cannot be read."""
    out = {}
    for p in paths:
        try:
            out[p] = fingerprint(p)
        except OSError as exc:
            out[p] = f"{exc.strerror or exc}"
    return out


def check_access(client, paths: Iterable) -> None:
    """Every worker must read every input, and the same file the client checked (a path they all see: a shared
    disk or the same copy on each): compared by size and a digest of its content, so that a stale copy on one
    machine is refused before any work, naming the worker and the file."""
    paths = {os.path.abspath(str(p)) for p in paths}
    paths |= {str(Path(p).with_suffix(s)) for p in list(paths) if p.lower().endswith(".shp") for s in SIDECARS
              if Path(p).with_suffix(s).exists()}
    paths = sorted(paths)
    mine = _fingerprints(paths)
    try:
        found = client.run(_fingerprints, paths)
    except Exception as exc:  # a worker without zoning (or another version) cannot even run the check
        raise DataError(f"the cluster's workers cannot run zoning's tasks ({type(exc).__name__}: {exc}). Install "
                        "the same zoning version where the workers run.") from None
    unreadable, different = [], []
    for w, prints in sorted(found.items()):
        for p in paths:
            got = prints.get(p)
            if isinstance(got, str):
                unreadable.append(f"worker {w} cannot read {p} ({got})")
            elif got is not None and not isinstance(mine[p], str) and tuple(got) != tuple(mine[p]):
                different.append(f"worker {w} reads another file at {p}: {got[0]:,} bytes against the client's "
                                 f"{mine[p][0]:,}" if got[0] != mine[p][0] else
                                 f"worker {w} reads another file at {p}: same size, different content")
    if unreadable:
        raise DataError(f"{len(unreadable)} input path(s) cannot be read on the cluster's workers; inputs must be "
                        "at a path every worker can read (a shared disk, or the same copy on every machine)",
                        unreadable)
    if different:
        raise DataError(f"{len(different)} input(s) differ between the client and the cluster's workers (a stale "
                        "copy on a worker's machine?); give every worker the same files (a shared disk, or copy "
                        "them again). Nothing was written", different)


def peak_mb() -> float:
    """Runs on a worker: its process's peak resident memory (VmHWM) in MB."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_peaks(client) -> dict[str, float]:
    """Each worker's peak memory so far (MB), for the run's record."""
    try:
        peaks = {w: round(v, 1) for w, v in sorted(client.run(peak_mb).items())}
    except Exception:  # a worker that just left: the record goes without it
        return {}
    log.info("workers' peak memory: %s", ", ".join(f"{w} {v:,.0f} MB" for w, v in peaks.items()))
    return peaks


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.records: list[tuple[int, str]] = []

    def emit(self, record):
        self.records.append((record.levelno, record.getMessage()))


def run_task(fn: Callable, job):
    """Runs on a worker: ``fn(job)`` with zoning's messages captured, to be logged by the client (the run's log
    is complete: a repaired geometry is reported wherever it was read)."""
    logger = logging.getLogger("zoning")
    cap = _Capture()
    logger.addHandler(cap)
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    logger.propagate = False  # to the client, not to the worker's own log
    try:
        return fn(job), cap.records
    finally:
        logger.removeHandler(cap)
        logger.setLevel(level)
        logger.propagate = propagate


def _comm_errors() -> tuple:
    """What a lost scheduler raises from a task's future (Dask cancels every future of a client it lost)."""
    from distributed.comm.core import CommClosedError

    try:
        from distributed.client import FutureCancelledError
    except ImportError:  # older distributed: a plain cancellation
        from concurrent.futures import CancelledError as FutureCancelledError
    return CommClosedError, FutureCancelledError


def _result(client, fut):
    """The future's result; refused when every worker stays paused for lack of memory, where Dask waits for ever."""
    from distributed import wait

    paused_since = None
    while True:
        try:
            wait(fut, timeout=POLL_S)
        except TimeoutError:
            try:
                _refuse_paused(client, client.scheduler.address)
                paused_since = None
            except DataError:
                paused_since = paused_since or time.monotonic()
                if time.monotonic() - paused_since >= PAUSED_GRACE_S:
                    raise
            continue
        except Exception:  # noqa: BLE001 - a lost scheduler, a failed task: fut.result() raises it as the caller knows
            pass
        return fut.result()


def ordered(client, fn: Callable, jobs: Iterable, what: str, window: int | None = None) -> Iterator:
    """``fn(job)`` for every job on the cluster, results yielded in job order.

    At most ``window`` tasks are in flight (default: 2 per worker), so the client holds a bounded number of
    results whatever the number of jobs. What a task logs is logged here, each message once.
    """
    from dask.distributed import KilledWorker

    n = len(client.scheduler_info(n_workers=-1)["workers"]) or 1
    window = window or 2 * n + 1
    pending: deque = deque()
    said: set = set()
    jobs = iter(jobs)

    def submit() -> bool:
        job = next(jobs, None)
        if job is None:
            return False
        pending.append(client.submit(run_task, fn, job, pure=False))
        return True

    try:
        while len(pending) < window and submit():
            pass
        while pending:
            fut = pending.popleft()
            try:
                result, records = _result(client, fut)
            except KilledWorker as exc:
                raise DataError(f"{what}: a task killed the worker running it several times ({exc}); the workers "
                                "probably run out of memory: lower chunk_size in the rules or give workers more "
                                "memory.") from None
            except (OSError, TimeoutError, *_comm_errors()) as exc:  # the scheduler went away mid-run
                raise DataError(f"{what}: the connection to the Dask scheduler was lost mid-run "
                                f"({type(exc).__name__}: {exc}); nothing was written. Check that the scheduler and "
                                "its workers are running, and run again.") from None
            fut.release()
            for level, msg in records:
                if msg not in said:
                    said.add(msg)
                    log.log(level, "%s", msg)
            submit()
            yield result
    finally:
        for fut in pending:
            fut.cancel()
