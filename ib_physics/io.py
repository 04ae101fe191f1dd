"""HDF5 files of ib_physics: a versioned schema, atomic writes, checkpoints.

Every file is written to a temporary name beside its target and renamed into
place only when complete, so an interrupted run never leaves a corrupt file: the
target is either the previous complete version or absent. Settings are stored as
JSON attributes; arrays as datasets (large ones compressed).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
from pathlib import Path
from typing import Any, Iterator

import numpy as np

__all__ = ["SCHEMA_VERSION", "atomic_h5", "write_json_attr", "read_json_attr", "write_arrays",
           "read_arrays", "versions"]

#: Version of the file layout; readers refuse files from a newer layout.
SCHEMA_VERSION = 1


def versions() -> dict[str, str]:
    """Versions of the software that produced a file."""
    import h5py
    import numba
    import scipy

    from . import __version__

    return {"ib_physics": __version__, "numpy": np.__version__, "numba": numba.__version__,
            "scipy": scipy.__version__, "h5py": h5py.__version__, "python": platform.python_version()}


@contextlib.contextmanager
def atomic_h5(path: str | os.PathLike[str]) -> Iterator[Any]:
    """Open ``path`` for writing through a temporary file renamed into place on success.

    Yields an open :class:`h5py.File`. On any exception (including
    ``KeyboardInterrupt``) the temporary file is removed and ``path`` is untouched.
    """
    import h5py

    target = Path(path)
    if target.parent and not target.parent.exists():
        raise FileNotFoundError(f"directory of `path` does not exist: {target.parent}")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["schema_version"] = SCHEMA_VERSION
            write_json_attr(f, "versions", versions())
            yield f
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_json_attr(obj: Any, name: str, value: Any) -> None:
    """Store a JSON-compatible value as a string attribute."""
    obj.attrs[name] = json.dumps(value, default=_json_default)


def read_json_attr(obj: Any, name: str, default: Any = None) -> Any:
    """Read an attribute written by :func:`write_json_attr`."""
    if name not in obj.attrs:
        return default
    raw = obj.attrs[name]
    if isinstance(raw, bytes):
        raw = raw.decode()
    return json.loads(raw)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def write_arrays(group: Any, arrays: dict[str, np.ndarray | None]) -> None:
    """Write arrays as datasets (``None`` entries are skipped); big ones compressed."""
    for name, arr in arrays.items():
        if arr is None:
            continue
        arr = np.asarray(arr)
        if arr.size >= 65536:
            group.create_dataset(name, data=arr, compression="gzip", compression_opts=1, shuffle=True)
        else:
            group.create_dataset(name, data=arr)


def read_arrays(group: Any, names: list[str]) -> dict[str, np.ndarray | None]:
    """Read datasets by name; missing ones come back as ``None``."""
    return {n: (group[n][()] if n in group else None) for n in names}


def read_group(path: str | os.PathLike[str], group: str, reader: Any, what: str) -> Any:
    """Open an ib_physics file, check its schema and return ``reader(file[group])``."""
    import h5py

    with h5py.File(path, "r") as f:
        check_schema(f, path)
        if group not in f:
            raise ValueError(f"{path} holds no {what} (no '{group}' group).")
        return reader(f[group])


def check_schema(f: Any, path: str | os.PathLike[str]) -> None:
    """Refuse files without a schema version or from a newer layout."""
    version = f.attrs.get("schema_version")
    if version is None:
        raise ValueError(f"{path} is not an ib_physics file (no schema_version attribute).")
    if int(version) > SCHEMA_VERSION:
        raise ValueError(f"{path} uses schema version {version}; this ib_physics reads up to {SCHEMA_VERSION}.")
