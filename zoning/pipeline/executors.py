"""Where the parts of a run are computed: in this process, or on a Dask cluster (``local:N`` worker processes on this
machine, or a running scheduler). Both have one interface, so the plan, the step of each part and the reduce are
written once (:mod:`.checking`, :mod:`.classifying`, :mod:`.compensating`).

An executor runs ``fn(job)`` for every job and yields the results in job order. Dask is imported only when a
cluster is asked for.
"""
from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator

import numpy as np

from .. import tiling

from . import cluster

WORKERS = max(1, min(3, os.cpu_count() or 1))  # threads a part shares its work with in this process
COUNTIES_PER_TASK = 64  # on a cluster: counties per task (a national run: 45 tasks)


class Serial:
    """A pool without threads: what a part submits runs at once in the caller's thread (a cluster's worker is one
    single-threaded process; more threads there would only compete with the other workers)."""

    def submit(self, fn: Callable, *args) -> Future:
        fut: Future = Future()
        fut.set_result(fn(*args))
        return fut

    def map(self, fn: Callable, items: Iterable) -> Iterator:
        return map(fn, items)


class InProcess:
    """Every part in this process, one after another; a part's own work is spread over :data:`WORKERS` threads
    (GEOS, pyproj and exactextract release the GIL)."""

    local = True

    def __init__(self):
        self.pool: ThreadPoolExecutor | Serial = Serial()

    def __enter__(self) -> "InProcess":
        self.pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="zoning-part")
        return self

    def __exit__(self, *exc) -> None:
        if isinstance(self.pool, ThreadPoolExecutor):
            self.pool.shutdown(wait=True, cancel_futures=True)

    def share(self, data):
        """``data`` as the jobs carry it (here: itself)."""
        return data

    def check_access(self, paths: Iterable) -> None:
        """Nothing to check: this process has opened the inputs already."""

    def map(self, fn: Callable, jobs: Iterable, what: str) -> Iterator:
        for job in jobs:
            yield fn(job)

    def info(self) -> dict:
        return {}


class OnDask:
    """Every part a task on a Dask cluster, a bounded number in flight, results back in job order
    (:func:`.cluster.ordered`); what the tasks log is logged here."""

    local = False
    pool = Serial()

    def __init__(self, address):
        self.address = address
        self.client = None
        self._connection = None

    def __enter__(self) -> "OnDask":
        self._connection = cluster.connect(self.address)
        self.client = self._connection.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._connection.__exit__(*exc)

    def share(self, data):
        """``data`` sent once to every worker; jobs carry its future."""
        return cluster.scatter(self.client, data)

    def check_access(self, paths: Iterable) -> None:
        cluster.check_access(self.client, paths)

    def map(self, fn: Callable, jobs: Iterable, what: str) -> Iterator:
        return cluster.ordered(self.client, fn, jobs, what)

    def info(self) -> dict:
        return {"cluster": cluster.name(self.address), "worker_peak_mb": cluster.worker_peaks(self.client),
                "client_peak_mb": round(cluster.peak_mb(), 1)}


def executor(address=None) -> InProcess | OnDask:
    """The executor for ``--cluster ADDRESS`` (None: this process), to be used as a context manager."""
    return OnDask(address) if address else InProcess()


def county_groups(ex: InProcess | OnDask, bounds: np.ndarray) -> list[np.ndarray]:
    """Counties (``bounds``: (4, n)) in parts: all at once in this process, where exactextract streams the rasters
    itself; on a cluster Hilbert-ordered groups of :data:`COUNTIES_PER_TASK`, each task reading only its window."""
    if ex.local:
        return [np.arange(bounds.shape[1])]
    return tiling.hilbert_groups(bounds, COUNTIES_PER_TASK)
