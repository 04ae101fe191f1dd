"""Kernel variants: module constants replaced in a kernel and in the helpers it calls."""

from __future__ import annotations

import pytest
from numba import njit

from ib_physics._jit import inner_kernel, specialised, variant

_EXTRA = True
_SCALE = True


@njit
def _extra_term(x):
    return 100.0 * x


@njit
def _plain_term(x):
    return x + 1.0


@njit
def _helper(x):
    if _EXTRA:
        return _plain_term(x) + _extra_term(x)
    return _plain_term(x)


@njit
def _entry(x):
    return 2.0 * _helper(x)


@inner_kernel
def _inner_scaled(x):
    if _SCALE:
        return 3.0 * x
    return x


@njit
def _calls_inner(x):
    return _inner_scaled(x) + 1.0


def _has_python_entry_point(dispatcher):
    (cres,) = dispatcher.overloads.values()
    return cres.library.get_pointer_to_function(cres.fndesc.llvm_cpython_wrapper_name) != 0


def test_an_inner_kernel_runs_inside_kernels_without_a_python_entry_point_and_refuses_python_calls():
    assert _calls_inner(2.0) == 7.0
    assert not _has_python_entry_point(_inner_scaled) and _has_python_entry_point(_calls_inner)
    with pytest.raises(TypeError, match="_inner_scaled runs only inside other kernels"):
        _inner_scaled(2.0)
    # Its variants (the engines' flavours of their cold helpers) keep both properties.
    lean = specialised(_calls_inner, {"_SCALE": False}, {})
    assert lean(2.0) == 3.0
    helper = lean.py_func.__globals__["_inner_scaled"]
    assert helper.py_func.__name__ == "_inner_scaled__scale_off"
    assert not _has_python_entry_point(helper)
    with pytest.raises(TypeError, match="runs only inside other kernels"):
        helper(2.0)


def test_the_engines_cold_helpers_refuse_python_calls():
    import numpy as np

    from ib_physics.random import philox_pair

    with pytest.raises(TypeError, match="philox_pair runs only inside other kernels"):
        philox_pair(*(np.uint64(v) for v in range(5)))


def test_specialised_rebuilds_the_callers_of_a_replaced_constant_and_prunes_its_branch():
    built: dict = {}
    lean = specialised(_entry, {"_EXTRA": False}, built)
    assert lean.py_func.__name__ == "_entry__extra_off"
    assert lean(1.0) == 4.0 and _entry(1.0) == 204.0
    helper = lean.py_func.__globals__["_helper"]
    assert helper.py_func.__name__ == "_helper__extra_off"
    # The pruned branch's callee was never typed for the variant; the untouched helper is shared.
    assert helper.py_func.__globals__["_plain_term"] is _plain_term
    fresh_extra = helper.py_func.__globals__["_extra_term"]
    assert fresh_extra is _extra_term
    # The same constants give the same objects (one compiled copy), an unchanged value the original.
    assert specialised(_entry, {"_EXTRA": False}, built) is lean
    assert specialised(_entry, {"_EXTRA": True}, built) is _entry


def test_a_variant_with_the_pruned_helper_never_compiles_it():
    @njit
    def never(x):
        return x

    lean = variant(_helper, "_helper_without", _EXTRA=False, _extra_term=never)
    assert lean(3.0) == 4.0
    assert never.signatures == []


def test_variant_refuses_an_unknown_constant():
    with pytest.raises(KeyError, match="_MISSING"):
        variant(_entry, "_entry_bad", _MISSING=False)


def test_specialised_takes_boolean_constants_only():
    with pytest.raises(TypeError, match="_EXTRA=0"):
        specialised(_entry, {"_EXTRA": 0}, {})
