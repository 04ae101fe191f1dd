"""Independent tasks on an executor: a local process pool, any ``concurrent.futures.Executor``,
or a ``dask.distributed.Client``.

Every task of the package is seeded by what it computes (a particle range, a replica range),
never by where or when it runs, so any executor, any number of workers and any completion order
give the same results. This module only moves tasks and results:

* a local :class:`~concurrent.futures.ProcessPoolExecutor` (the default) is started with the
  ``spawn`` method and one Numba-serial kernel thread per worker unless asked; if a worker
  process dies, the pool is rebuilt and the unfinished tasks are resubmitted (``retries`` times);
* a Dask client gets ``pure=False`` tasks (seeded tasks must not be deduplicated by their
  arguments' hash) with ``retries``; a lost worker's tasks are rescheduled by the scheduler;
  large shared arguments are scattered once (:meth:`TaskRunner.share`).
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Hashable, Iterator, Mapping

from .._validation import check_int_range

__all__ = ["TaskRunner", "is_dask_client"]


def is_dask_client(obj: Any) -> bool:
    """Whether ``obj`` is a ``dask.distributed.Client`` (without importing Dask)."""
    return type(obj).__name__ == "Client" and type(obj).__module__.startswith("distributed")


def _init_worker(threads: int) -> None:
    # Kernels take their thread count from the task; this caps what Numba itself would start.
    os.environ["NUMBA_NUM_THREADS"] = str(threads)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


class TaskRunner:
    """Runs ``fn(*args)`` for named tasks and yields ``(name, result)`` as they finish.

    Parameters
    ----------
    executor : None, int, concurrent.futures.Executor or dask.distributed.Client
        None or an int: a local process pool of that many workers (None: the CPU count);
        an executor or a client is used as it is and not shut down.
    threads_per_worker : int
        Kernel threads in each task (the tasks pass it on); also sets ``NUMBA_NUM_THREADS`` in
        the workers of a pool this runner starts.
    retries : int
        Times a task is tried again after its worker was lost.
    """

    def __init__(self, executor: Any = None, *, threads_per_worker: int = 1, retries: int = 2) -> None:
        self.threads_per_worker = check_int_range(threads_per_worker, "threads_per_worker", 1, 1024)
        self.retries = check_int_range(retries, "retries", 0, 100)
        self._owned = executor is None or (isinstance(executor, int) and not isinstance(executor, bool))
        if self._owned:
            self.workers = (max(1, os.cpu_count() or 1) if executor is None
                            else check_int_range(executor, "workers", 1, 4096))
            self._executor: Any = self._new_pool()
        elif is_dask_client(executor):
            self._executor = executor
            self.workers = max(1, sum(executor.nthreads().values()))
        elif isinstance(executor, Executor):
            self._executor = executor
            self.workers = max(1, getattr(executor, "_max_workers", 1) or 1)
        else:
            raise TypeError("`executor` must be None, a number of workers, a concurrent.futures.Executor or a "
                            f"dask.distributed.Client, got {type(executor).__name__}.")
        self.dask = is_dask_client(self._executor)

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(self.threads_per_worker,))

    def share(self, value: Any) -> Any:
        """A handle of ``value`` to pass to many tasks: scattered once to a Dask cluster (every
        task then refers to the one copy), the value itself elsewhere."""
        if self.dask:
            return self._executor.scatter(value, broadcast=True, hash=False)
        return value

    def run(self, fn: Callable[..., Any], tasks: Mapping[Hashable, tuple[Any, ...]]) -> Iterator[tuple[Hashable, Any]]:
        """Submit every task and yield ``(name, result)`` in completion order.

        A task that raises stops the run with its exception (after the others are cancelled).
        """
        pending = dict(tasks)
        if not pending:
            return
        if self.dask:
            yield from self._run_dask(fn, pending)
            return
        attempts = 0
        while pending:
            futures: dict[Future, Hashable] = {self._executor.submit(fn, *args): name
                                               for name, args in pending.items()}
            try:
                for future in as_completed(futures):
                    name = futures[future]
                    result = future.result()
                    del pending[name]
                    yield name, result
            except BrokenProcessPool:
                # A worker died (killed, out of memory): rebuild an owned pool and resubmit what is left.
                attempts += 1
                if not self._owned or attempts > self.retries:
                    raise
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = self._new_pool()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def collect(self, fn: Callable[..., Any], tasks: Mapping[Hashable, tuple[Any, ...]], *,
                done: Mapping[Hashable, Any] | None = None, store: Any = None,
                write: Callable[[Any, Any], None] | None = None, progress: bool | Callable[[int, int], None] = False,
                desc: str = "tasks", unit: str = "task") -> dict[Hashable, Any]:
        """Run the tasks not already ``done`` and return every result by name.

        With a :class:`~ib_physics.parallel.TaskStore`, each result is written (``write(group,
        result)``) as it finishes, so an interruption keeps it. ``progress``: a tqdm bar over
        tasks, or ``progress(done, total)``.
        """
        results: dict[Hashable, Any] = dict(done or {})
        todo = {name: args for name, args in tasks.items() if name not in results}
        bar = None
        if progress is True:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), unit=unit, desc=desc)
        try:
            for name, result in self.run(fn, todo):
                results[name] = result
                if store is not None and write is not None:
                    store.add(str(name), lambda g, r=result: write(g, r))
                if bar is not None:
                    bar.update(1)
                elif callable(progress):
                    progress(len(results), len(tasks))
        finally:
            if bar is not None:
                bar.close()
        return results

    def _run_dask(self, fn: Callable[..., Any], pending: dict[Hashable, tuple[Any, ...]]) -> Iterator[tuple[Hashable, Any]]:
        from distributed import as_completed as dask_completed

        client = self._executor
        futures = {client.submit(fn, *args, pure=False, retries=self.retries): name for name, args in pending.items()}
        try:
            for future in dask_completed(list(futures)):
                yield futures[future], future.result()
        except BaseException:
            client.cancel(list(futures))
            raise

    def close(self) -> None:
        """Shut down a pool this runner started (an executor or client passed in stays open)."""
        if self._owned:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "TaskRunner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
