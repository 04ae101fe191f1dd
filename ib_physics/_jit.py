"""The one set of Numba flags used by every kernel of the package.

Kernels are serial and release the GIL (``nogil``); parallelism comes from
running disjoint index ranges on threads (:mod:`ib_physics.parallel`), which keeps
compile times to seconds and results independent of the thread count.
``cache=True`` keeps compiled kernels on disk across processes. Kernels get no C-callable
wrapper (nothing takes them as first-class function values), and helpers that only other kernels
call get no CPython entry point either (:func:`inner_kernel`): each wrapper is code a first call
would type, lower and compile for nothing (unboxing code for every argument). ``fastmath`` is
off on purpose: tests pin results bitwise across thread counts and chunkings, and
reassociation would change them. ``error_model="numpy"`` lets divisions by zero
produce inf/nan instead of raising inside hot loops (inputs are validated in
Python before any kernel runs).

Flavours: :func:`specialised` rebuilds a kernel, and the helpers it calls, with boolean module
constants set to False, so that Numba prunes the code they guard before typing; the engines choose
the flavour a run needs (less to compile on a first call, the same arithmetic).
"""

from __future__ import annotations

import types
from typing import Any, Callable, Mapping

from numba import njit
from numba.core.registry import CPUDispatcher

__all__ = ["kernel", "inner_kernel", "inline_kernel", "contracting_kernel", "variant", "specialised"]

_OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy", "no_cfunc_wrapper": True}

#: Serial kernel decorator.
kernel = njit(**_OPTIONS)


class _InnerKernel(CPUDispatcher):
    """A kernel compiled without a CPython entry point: callable from other kernels only. A call
    from Python raises instead of jumping to the entry point that was never compiled."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{self.py_func.__name__} runs only inside other kernels (compiled without a Python "
                        f"entry point); call the kernel that uses it")


def inner_kernel(func: Callable[..., Any]) -> Any:
    """Serial kernel that only other kernels call (the cold helpers of the engines' loops): the
    same flags as :data:`kernel`, without the CPython wrapper (its unboxing code for every argument:
    0.3–0.5 s of the bounded general particle path's first call over its cold helpers)."""
    return _inner_dispatcher(func, _OPTIONS["cache"], {k: v for k, v in _OPTIONS.items() if k != "cache"})


def _inner_dispatcher(func: Callable[..., Any], caching: bool, options: Mapping[str, Any]) -> Any:
    dispatcher = _InnerKernel(func, targetoptions={**options, "nopython": True, "no_cpython_wrapper": True})
    if caching:
        dispatcher.enable_caching()
    return dispatcher

#: Small device-style helper, inlined at the Numba IR level into its callers.
inline_kernel = njit(inline="always", **_OPTIONS)
#: Serial kernel whose multiply-adds may fuse into FMA instructions (LLVM's ``contract`` flag
#: alone: no reassociation, so sums keep their order and results stay independent of threads
#: and chunks; the last bit can differ from a machine without FMA). For estimator kernels whose
#: cost is polynomial arithmetic, not for the simulation engines' pinned paths.
contracting_kernel = njit(fastmath={"contract"}, **_OPTIONS)


def variant(dispatcher: Any, name: str, **constants: Any) -> Any:
    """The kernel ``dispatcher`` compiled again as ``name`` with module constants replaced.

    Numba reads module globals as compile-time constants and prunes branches on them before
    typing, so ``if CONSTANT:`` blocks of a variant built with ``CONSTANT=False`` are neither
    typed nor compiled (nor are the kernels they call). The variant has its own name, hence its
    own on-disk cache entry. Call it at the end of the module, once every helper exists: the
    variant sees the module's globals as they are then.
    """
    func: Callable[..., Any] = dispatcher.py_func
    scope = dict(func.__globals__)
    for key, value in constants.items():
        if key not in scope:
            raise KeyError(f"{func.__name__} has no module constant {key!r}")
        scope[key] = value
    code = func.__code__.replace(co_name=name, co_qualname=name)
    copy = types.FunctionType(code, scope, name, func.__defaults__, func.__closure__)
    copy.__qualname__ = name
    copy.__module__ = func.__module__
    copy.__doc__ = func.__doc__
    caching = type(dispatcher._cache).__name__ != "NullCache"
    options = {k: v for k, v in dispatcher.targetoptions.items() if k != "nopython"}  # njit implies it
    if isinstance(dispatcher, _InnerKernel):
        return _inner_dispatcher(copy, caching, options)
    return njit(cache=caching, **options)(copy)


def specialised(dispatcher: Any, constants: Mapping[str, Any], built: dict[Any, Any]) -> Any:
    """``dispatcher`` with module constants replaced in it and in every kernel it calls.

    A kernel is rebuilt (with :func:`variant`) when it reads one of ``constants`` whose value
    differs from its module's, or calls (transitively) a kernel that is rebuilt; the others are
    shared as they are. A rebuilt kernel is named after the constants it depends on, e.g.
    ``drift_lanes__tables_off``, which is also its on-disk cache entry; ``built`` memoises on that
    name, so families of variants built with one dict share one compiled copy of each helper.
    """
    for key, value in constants.items():
        if not isinstance(value, bool):
            raise TypeError(f"specialised takes boolean module constants (their names label the variants); "
                            f"{key}={value!r}")
    return _specialise(dispatcher, dict(constants), built)[0]


def _specialise(dispatcher: Any, constants: dict[str, Any], built: dict[Any, Any]) -> tuple[Any, dict[str, Any]]:
    func = dispatcher.py_func
    package = func.__module__.split(".")[0]
    scope = func.__globals__
    depends: dict[str, Any] = {}
    helpers: dict[str, Any] = {}
    for name in func.__code__.co_names:
        if name not in scope:
            continue
        value = scope[name]
        if name in constants:
            if constants[name] != value:
                depends[name] = constants[name]
        elif isinstance(value, CPUDispatcher) and value is not dispatcher and \
                value.py_func.__module__.split(".")[0] == package:
            helper, helper_depends = _specialise(value, constants, built)
            if helper is not value:
                helpers[name] = helper
                depends.update(helper_depends)
    if not depends:
        return dispatcher, {}
    label = "_".join(f"{key.strip('_').lower()}_{'on' if value else 'off'}" for key, value in sorted(depends.items()))
    name = f"{func.__name__}__{label}"
    key = (func.__module__, name)
    if key not in built:
        replaced = {k: v for k, v in depends.items() if k in func.__code__.co_names and k in scope}
        built[key] = variant(dispatcher, name, **replaced, **helpers)
    return built[key], depends
