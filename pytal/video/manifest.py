"""``manifest.json`` of a feature folder written by ``pytal extract``::

    {"format": "pytal-features-1",
     "settings": {"backbone", "weights", "fps" (null: each video's own), "num_frames", "stride",
                  "resize", "crop"},
     "videos": {video_id: {"source", "fps", "native_fps", "duration", "frames",
                           "num_features", "num_frames", "stride", "backbone", "weights"}}}

``settings`` is what a detector trained on the folder needs to extract matching features again
(``pytal train`` copies it into its checkpoints).
"""
from __future__ import annotations

import json
import os
from typing import Any, Optional

from pytal.io.atomic import atomic_write

__all__ = ["MANIFEST", "MANIFEST_FORMAT", "read_manifest", "write_manifest", "extraction_settings"]

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "pytal-features-1"


def read_manifest(folder: str) -> Optional[dict[str, Any]]:
    """The manifest of ``folder``, or None when it has none. Raises ValueError naming the file
    when it is not a pytal manifest."""
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        return None
    with open(path, "r", encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path}: not a pytal feature manifest (expected format "
                         f"{MANIFEST_FORMAT!r})")
    if not isinstance(data.get("settings"), dict) or not isinstance(data.get("videos"), dict):
        raise ValueError(f"{path}: expected 'settings' and 'videos' mappings")
    return data


def write_manifest(folder: str, data: dict[str, Any]) -> None:
    """Write ``folder/manifest.json`` atomically."""
    atomic_write(os.path.join(folder, MANIFEST),
                 lambda f: json.dump(data, f, indent=1, sort_keys=True))


def extraction_settings(folder: Optional[str]) -> Optional[dict[str, Any]]:
    """The ``settings`` of ``folder``'s manifest, or None when there is none (or no folder)."""
    if not folder or not os.path.isdir(folder):
        return None
    manifest = read_manifest(folder)
    return None if manifest is None else dict(manifest["settings"])
