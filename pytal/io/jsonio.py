"""JSON in and out: read a path or take a loaded mapping; write atomically (temp file + rename)."""
from __future__ import annotations

import gzip
import json
import os
from typing import Any, Mapping, Union

from pytal.io.atomic import atomic_write

PathOrDict = Union[str, os.PathLike, Mapping[str, Any]]


def read_json(source: PathOrDict, *, what: str = "JSON") -> tuple[dict, str]:
    """``(data, description)`` from a JSON path (``.json``, or ``.json.gz`` compressed) or an
    already loaded mapping.

    ``description`` is the path, or ``"<what dict>"`` for a mapping (used in error messages).
    A file that is missing raises FileNotFoundError; one that is not UTF-8 JSON raises
    ValueError naming the file and, for a syntax error, the line and column.
    """
    if isinstance(source, Mapping):
        return dict(source), f"<{what} dict>"
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} file not found: {path}")
    opener = gzip.open if path.endswith(".gz") else open     # ".json.gz": gzip-compressed JSON
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            return json.load(f), path
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not a valid JSON {what} file: {err.msg} at line "
                         f"{err.lineno} column {err.colno}") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a JSON {what} file: not UTF-8 text (byte "
                         f"{err.start})") from None
    except (gzip.BadGzipFile, EOFError) as err:
        raise ValueError(f"{path}: not a gzip-compressed JSON {what} file "
                         f"({' '.join(str(err).split()) or 'truncated'})") from None
    except RecursionError:
        raise ValueError(f"{path}: not a usable JSON {what} file: nested too deeply") from None


def write_json(path: Union[str, os.PathLike], data: Any, *, indent: Union[int, None] = None) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename, so
    readers never see a half-written file."""
    def dump(f) -> None:
        json.dump(data, f, indent=indent)
        f.write("\n")

    atomic_write(path, dump)
