"""Kernel variants: module constants replaced in a kernel and in the helpers it calls."""

from __future__ import annotations

import pytest
from numba import njit

from ib_physics._jit import specialised, variant

_EXTRA = True


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
