"""Writing a file so that readers see either the old file or the complete new one."""
from __future__ import annotations

import os
import tempfile
from typing import IO, Callable, Union

#: Name prefix of atomic_write's temporary files.
TEMP_PREFIX = ".tmp-"


def atomic_write(path: Union[str, os.PathLike], write: Callable[[IO], None], *,
                 binary: bool = False) -> None:
    """Call ``write(f)`` on a temporary file in ``path``'s folder, flush it to disk and rename
    it over ``path``. On any failure the temporary file is removed and ``path`` is untouched,
    so a failed run never leaves a half-written result, config or checkpoint."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=os.path.splitext(path)[1], dir=folder)
    try:
        os.chmod(tmp, _new_file_mode(path))
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_npy(path: Union[str, os.PathLike], array: "np.ndarray") -> None:
    """Write ``array`` to ``path`` as ``.npy`` through :func:`atomic_write`."""
    import numpy as np

    atomic_write(path, lambda f: np.save(f, array), binary=True)


def remove_torn_writes(folder: Union[str, os.PathLike]) -> list[str]:
    """Delete the temporary files :func:`atomic_write` left in ``folder`` when its process was
    killed while writing (SIGKILL skips the cleanup); returns their paths. Call it only for a
    folder no other process is writing to (a run folder when its run starts)."""
    folder = os.fspath(folder)
    removed = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.startswith(TEMP_PREFIX) and os.path.isfile(path):
            os.unlink(path)
            removed.append(path)
    return removed


def _new_file_mode(path: str) -> int:
    """The mode ``open(path, "w")`` would give: the existing file's, else 0o666 less the umask
    (``mkstemp`` creates its file private, 0o600)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
