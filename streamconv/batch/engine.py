"""Run the tasks: in this process (``--jobs 1``, no Dask imported) or on Dask distributed.

With Dask, tasks are submitted in a window of a few per worker (millions of inputs never
become millions of futures at once) and collected as they complete.  A worker that dies is
Dask's business: the scheduler gives its tasks to another worker (a task writes the same
bytes under the same names when run twice).  A cluster given with ``--cluster`` is only
connected to, never shut down; an embedded LocalCluster is closed before we return.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .plan import Piece
from .task import Job, TaskResult, run_task

__all__ = ["DaskEngine", "Engine", "InProcessEngine"]

log = logging.getLogger(__name__)

# Dask's statistical profiler samples the task thread's stack every 10 ms, its event loop
# checks its own health every 20 ms: each wake-up takes the GIL from our GIL-bound task
# (futex storms: measured, a task ran 2-3x slower than in a plain process).  Our tasks need
# neither; the nannies of the embedded cluster pass this config on to their workers.
_WORKER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
}

# Worker processes of the embedded cluster are forked from this process (Linux), not
# spawned: a spawned worker imports Python, Dask and our converter afresh (~0.4 s and
# ~0.5 CPU s each before its first task; measured: 10 datasets took 0.96 s with spawn,
# 0.58 s forked), a forked one starts with them.  A user's own
# DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD wins.
_START_METHOD_ENV = "DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD"
# what a task imports on its first run (~60 ms): imported here once, before the fork
_TASK_MODULES = (
    "streamconv.api",
    "streamconv.core.pipeline",
    "streamconv.core.build",
    "streamconv.core.documents",
    "streamconv.core.encode",
    "streamconv.core.framing",
    "streamconv.core.transform",
    "streamconv.sinks",
    "streamconv.runtime",
)
_FORK_HOOKED = False

OnResult = Callable[[list[Piece], TaskResult | None, BaseException | None], None]


class Engine:
    name = "in-process"
    workers = 1

    def run(self, tasks: Iterable[list[Piece]], job: Job, on_result: OnResult) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class InProcessEngine(Engine):
    def run(self, tasks: Iterable[list[Piece]], job: Job, on_result: OnResult) -> None:
        for pieces in tasks:
            on_result(pieces, run_task(pieces, job), None)


class DaskEngine(Engine):
    """A Dask client, to a LocalCluster of ``jobs`` processes or a running scheduler.

    Dask is imported in a thread at once, while the driver reads its arguments and sources;
    an embedded cluster is created once the driver waits for it (:meth:`wait_ready`):
    its workers are forked then, while no other thread of ours is busy (a fork copies
    only the forking thread: a lock held elsewhere would stay held in the child).
    """

    name = "dask"

    def __init__(self, jobs: int, address: str | None, dashboard: bool) -> None:
        self.jobs = jobs
        self.address = address
        self.dashboard = dashboard
        self.client: Any = None
        self.cluster: Any = None
        self.error: BaseException | None = None
        self._go = threading.Event()  # set: the driver waits for the cluster (or closes)
        self._closing = False
        self._thread = threading.Thread(target=self._start, name="dask-start", daemon=True)
        self._thread.start()

    def _start(self) -> None:
        try:
            import dask
            import distributed

            dd: Any = distributed  # untyped calls
            dask.config.set(_WORKER_CONFIG)

            # Dask logs its life cycle at INFO through the root handler ours set up: only
            # its errors belong among our messages (unless -d asks for everything)
            if not log.isEnabledFor(logging.DEBUG):
                for name in ("distributed", "bokeh", "tornado"):
                    logging.getLogger(name).setLevel(logging.ERROR)
            if self.address:
                self.client = dd.Client(self.address, timeout="30s")
            else:
                fork = _prepare_fork(dask)
                self._go.wait()
                if self._closing:
                    return  # closed before it was used (a usage error, an early signal)
                if fork:
                    _warn_less()
                self.cluster = dd.LocalCluster(
                    n_workers=self.jobs,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":8787" if self.dashboard else None,
                    # without a dashboard the scheduler still serves health/metrics over
                    # HTTP, on :8787 by default: loopback and a free port instead
                    scheduler_kwargs={} if self.dashboard else {"dashboard_address": "127.0.0.1:0"},
                    silence_logs=logging.ERROR,
                )
                self.client = dd.Client(self.cluster)
            if self.dashboard and self.client.dashboard_link:
                log.warning("Dask dashboard: %s", self.client.dashboard_link)
        except BaseException as exc:  # reported by run()
            self.error = exc

    def wait_ready(self) -> None:
        self._go.set()
        self._thread.join()
        if self.error is not None:
            raise self.error

    def run(self, tasks: Iterable[list[Piece]], job: Job, on_result: OnResult) -> None:
        import distributed

        as_completed: Any = distributed.as_completed
        self.wait_ready()
        client = self.client
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        self.workers = workers
        window = 4 * workers + 4
        # planned lazily: the first byte ranges of a big input run while the driver is
        # still scanning the rest of it
        pending = iter(tasks)
        by_key: dict[str, list[Piece]] = {}

        def submit() -> Any:
            pieces = next(pending, None)
            if pieces is None:
                return None
            fut = client.submit(run_task, pieces, job, pure=False)
            by_key[fut.key] = pieces
            return fut

        first = [f for f in (submit() for _ in range(window)) if f is not None]
        done = as_completed(first, with_results=False)
        for fut in done:
            pieces = by_key.pop(fut.key)
            try:
                result = fut.result()
            except Exception as exc:  # KilledWorker after repeated deaths, a bug of ours
                on_result(pieces, None, exc)
            else:
                on_result(pieces, result, None)
            fut.release()
            nxt = submit()
            if nxt is not None:
                done.add(nxt)

    def close(self) -> None:
        """Idempotent: the driver closes before it sweeps, and once more on the way out."""
        if self.client is None:
            self._closing = True  # not used yet: no cluster is started just to be closed
        self._go.set()
        self._thread.join()
        client, cluster, self.client, self.cluster = self.client, self.cluster, None, None
        try:
            if client is not None:
                client.close()
        finally:
            if cluster is not None:
                cluster.close()


def _prepare_fork(dask: Any) -> bool:
    """Workers forked from here (Linux, unless the user chose): the converter imported
    first, so that they start with it; a forked worker gets the default SIGTERM back.
    (Set each time: a method set for an earlier engine of this process must not stay.)"""
    method = os.environ.get(_START_METHOD_ENV) or (
        "fork" if sys.platform.startswith("linux") else ""
    )
    if method:
        dask.config.set({"distributed.worker.multiprocessing-method": method})
    if method != "fork":
        return False
    import importlib

    for name in _TASK_MODULES:
        importlib.import_module(name)
    global _FORK_HOOKED
    if not _FORK_HOOKED:
        _FORK_HOOKED = True
        os.register_at_fork(after_in_child=_in_child)
    return True


def _in_child() -> None:
    # the driver's SIGTERM handler turns the signal into KeyboardInterrupt (command.py);
    # a worker, as a spawned one, just ends on SIGTERM (its nanny restarts or closes it)
    import signal

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _warn_less() -> None:
    # Python 3.12+ warns at every fork of a process with threads; Dask's own threads are
    # quiet when forking (its "fork" start method), and ours wait in wait_ready()
    import warnings

    warnings.filterwarnings(
        "ignore", message=r".*use of fork\(\) may lead to deadlocks", category=DeprecationWarning
    )
