"""pytal's detectors and their registry.

``build_model(cfg)`` builds the detector named by ``cfg["model"]["name"]``::

    model = pytal.models.build_model(cfg)        # e.g. "cltdr_gmg" -> CLTDRGMG
"""
from pytal.models.registry import build_model, register_model, registered_models
from pytal.models.cltdr_gmg.model import CLTDRGMG  # registers "cltdr_gmg"

__all__ = ["CLTDRGMG", "build_model", "register_model", "registered_models"]
