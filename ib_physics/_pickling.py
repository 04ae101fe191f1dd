"""Pickling of frozen results whose diagnostics are a read-only mapping view."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any


class PicklableDiagnostics:
    """Mixin for frozen dataclasses with a ``diagnostics`` MappingProxyType: the view does not
    pickle, its dict does, so results can travel between processes (executors, Dask)."""

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["diagnostics"] = dict(state["diagnostics"])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)
        object.__setattr__(self, "diagnostics", MappingProxyType(dict(state["diagnostics"])))
