"""pytal's operators. Each runs the compiled kernel of ``pytal._C`` for the inputs' device when
it was built, else its pure-PyTorch reference (``pytal.ops.reference``); ``backend=`` forces one
for a call, ``with force_backend(...):`` for every call in a block.
"""
from pytal.ops._backend import (backend_info, extension_loaded, force_backend, forced_backend,
                                has_kernel)
from pytal.ops.boundary_pool import boundary_pool, segment_pool
from pytal.ops.gmg import gmg
from pytal.ops.soft_nms import soft_nms, soft_nms_top_k
from pytal.ops.trident_decode import trident_decode

__all__ = ["backend_info", "boundary_pool", "extension_loaded", "force_backend",
           "forced_backend", "gmg", "has_kernel", "segment_pool", "soft_nms", "soft_nms_top_k",
           "trident_decode"]
