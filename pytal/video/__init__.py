"""Videos in, features out: streaming decoding with fps resampling, sliding windows, and
extraction with a :mod:`pytal.backbones` encoder into ``<video_id>.npy`` files + ``manifest.json``
(see docs/video.md). Decoding needs PyAV (``pip install 'pytal[video]'``), imported on first use.
"""
from pytal.video.decode import (FrameTransform, VideoError, VideoInfo, iter_frames,
                                nearest_frame_indices, probe_video)
from pytal.video.manifest import extraction_settings, read_manifest
from pytal.video.presets import PRESETS, Preset, get_preset
from pytal.video.windows import iter_windows, num_windows, window_centres

__all__ = ["FrameTransform", "PRESETS", "Preset", "VideoError", "VideoInfo", "extraction_settings",
           "get_preset", "iter_frames", "iter_windows", "nearest_frame_indices", "num_windows",
           "probe_video", "read_manifest", "window_centres"]
