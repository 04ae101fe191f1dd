"""The one set of Numba flags used by every kernel of the package.

Kernels are serial and release the GIL (``nogil``); parallelism comes from
running disjoint index ranges on threads (:mod:`ib_physics.parallel`), which keeps
compile times to seconds and results independent of the thread count.
``cache=True`` keeps compiled kernels on disk across processes. ``fastmath`` is
off on purpose: tests pin results bitwise across thread counts and chunkings, and
reassociation would change them. ``error_model="numpy"`` lets divisions by zero
produce inf/nan instead of raising inside hot loops (inputs are validated in
Python before any kernel runs).
"""

from __future__ import annotations

from numba import njit

__all__ = ["kernel", "inline_kernel", "contracting_kernel"]

_OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy"}

#: Serial kernel decorator.
kernel = njit(**_OPTIONS)
#: Small device-style helper, inlined at the Numba IR level into its callers.
inline_kernel = njit(inline="always", **_OPTIONS)
#: Serial kernel whose multiply-adds may fuse into FMA instructions (LLVM's ``contract`` flag
#: alone: no reassociation, so sums keep their order and results stay independent of threads
#: and chunks; the last bit can differ from a machine without FMA). For estimator kernels whose
#: cost is polynomial arithmetic, not for the simulation engines' pinned paths.
contracting_kernel = njit(fastmath={"contract"}, **_OPTIONS)
