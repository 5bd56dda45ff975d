"""TAL-MTS (Gao et al., IEEE TCSVT): multi-temporal-scale coarse-to-fine detector on frame
clips; see :mod:`pytal.models.talmts.model` and ``docs/talmts.md``."""
from pytal.backbones.feature_maps import pack_feature_maps, unpack_feature_maps
from pytal.models.talmts.config import TALMTSConfig
from pytal.models.talmts.model import TALMTS, window_starts
from pytal.models.talmts.refinement import boundary_regions

__all__ = ["TALMTS", "TALMTSConfig", "boundary_regions", "pack_feature_maps",
           "unpack_feature_maps", "window_starts"]
