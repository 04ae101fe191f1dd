"""Running kernels on threads over disjoint index ranges.

Every kernel of the package is serial and releases the GIL; this module splits
an index range into contiguous pieces and runs them on a thread pool. Because
each particle's random numbers depend only on ``(seed, index)`` and reductions
are merged in a fixed order, results do not depend on the number of threads.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Callable

import numba

from .._validation import check_int_range

__all__ = ["resolve_threads", "split_range", "ThreadRunner"]


def resolve_threads(threads: int | None) -> int:
    """Threads to use: ``threads`` if given, else Numba's setting (``NUMBA_NUM_THREADS``,
    :func:`numba.set_num_threads`)."""
    if threads is None:
        return max(1, numba.get_num_threads())
    return check_int_range(threads, "threads", 1, max(1, os.cpu_count() or 1) * 4)


def split_range(begin: int, end: int, parts: int, align: int = 1) -> list[tuple[int, int]]:
    """Split ``[begin, end)`` into at most ``parts`` contiguous pieces whose inner
    boundaries are offsets from ``begin`` that are multiples of ``align``."""
    n = end - begin
    if n <= 0:
        return []
    units = -(-n // align)
    parts = max(1, min(parts, units))
    out = []
    for k in range(parts):
        a = begin + (units * k // parts) * align
        b = min(end, begin + (units * (k + 1) // parts) * align)
        if b > a:
            out.append((a, b))
    return out


class ThreadRunner:
    """A thread pool that runs ``fn(a, b)`` over pieces of a range and waits for all."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._pool = ThreadPoolExecutor(max_workers=threads) if threads > 1 else None

    def run(self, fn: Callable[[int, int], None], begin: int, end: int, align: int = 1) -> None:
        pieces = split_range(begin, end, self.threads, align)
        if self._pool is None or len(pieces) == 1:
            for a, b in pieces:
                fn(a, b)
            return
        futures = [self._pool.submit(fn, a, b) for a, b in pieces]
        try:
            for f in futures:
                f.result()
        except KeyboardInterrupt:
            # Running kernels cannot be stopped; let them finish so the state stays whole.
            wait(futures)
            raise

    def run_all(self, fn: Callable[[int, int], None], begin: int, end: int) -> KeyboardInterrupt | None:
        """Like :meth:`run`, but every piece runs to the end even after a Ctrl-C, which is
        returned (not raised) so the caller can finish its bookkeeping first."""
        pieces = split_range(begin, end, self.threads)
        interrupted: KeyboardInterrupt | None = None
        if self._pool is None or len(pieces) == 1:
            for a, b in pieces:
                try:
                    fn(a, b)
                except KeyboardInterrupt as exc:  # raised once the nogil kernel has returned
                    interrupted = interrupted or exc
            return interrupted
        futures = [self._pool.submit(fn, a, b) for a, b in pieces]
        for f in futures:
            while True:
                try:
                    f.result()
                    break
                except KeyboardInterrupt as exc:
                    interrupted = interrupted or exc
        return interrupted

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def __enter__(self) -> "ThreadRunner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
