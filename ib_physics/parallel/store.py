"""One HDF5 file of finished tasks, rewritten atomically as each task finishes.

Layout: root attribute ``task_fingerprint`` (what the tasks compute: a rerun with other inputs is
refused), group ``tasks/<name>`` per finished task written by the caller's writer. Each update
copies the finished groups into a temporary file and renames it into place
(:func:`ib_physics.io.atomic_h5`), so a kill at any moment leaves the previous complete file, and a
rerun skips the tasks it holds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from .. import io

__all__ = ["TaskStore"]


class TaskStore:
    """Finished tasks of one job in one HDF5 file.

    Parameters
    ----------
    path : path
        The file; created on the first finished task.
    fingerprint : str
        Identifies the job's inputs; a file with another fingerprint is refused.
    """

    def __init__(self, path: str | os.PathLike[str], fingerprint: str) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        if not self.path.parent.exists():
            raise FileNotFoundError(f"directory of `checkpoint` does not exist: {self.path.parent}")
        self._done: set[str] = set()
        if self.path.exists():
            import h5py

            with h5py.File(self.path, "r") as f:
                io.check_schema(f, self.path)
                stored = f.attrs.get("task_fingerprint")
                stored = stored.decode() if isinstance(stored, bytes) else stored
                if stored != fingerprint:
                    raise ValueError(f"`checkpoint` file {self.path} belongs to a job with other inputs; "
                                     "remove it or choose another path.")
                self._done = set(f["tasks"]) if "tasks" in f else set()

    @property
    def done(self) -> set[str]:
        """Names of the finished tasks."""
        return set(self._done)

    def read(self, name: str, reader: Callable[[Any], Any]) -> Any:
        """``reader(group)`` of a finished task."""
        import h5py

        with h5py.File(self.path, "r") as f:
            return reader(f["tasks"][name])

    def add(self, name: str, writer: Callable[[Any], None]) -> None:
        """Record a finished task: ``writer(group)`` fills its group; the file is replaced atomically."""
        import h5py

        if name in self._done:
            raise ValueError(f"task {name!r} is already stored.")
        old = self.path if self.path.exists() else None
        with io.atomic_h5(self.path) as f:
            f.attrs["task_fingerprint"] = self.fingerprint
            tasks = f.create_group("tasks")
            if old is not None:
                with h5py.File(old, "r") as src:
                    for key in src["tasks"]:
                        src.copy(src["tasks"][key], tasks, name=key)
            writer(tasks.create_group(name))
        self._done.add(name)
