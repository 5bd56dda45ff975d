"""pytal's detectors, their registry, the protocol they follow and the parts they share.

``build_model(cfg)`` builds the detector named by ``cfg.model.name`` from a typed config
(:func:`pytal.config.load_config`)::

    model = pytal.models.build_model(cfg)        # e.g. "cltdr_gmg" -> CLTDRGMG,
                                                 #      "seqattnet" -> SeqAttNet
    losses = model(batch)                        # pytal.data.Batch -> {"loss": ..., ...}
    detections = model.predict(batch)            # per video, segments in seconds

See :mod:`pytal.models.protocol` for what a detector provides and ``docs/models.md`` for how
to add one; shared parts are in :mod:`pytal.models.common`.
"""
from pytal.models.protocol import Detector, ModelConfig
from pytal.models.registry import build_model, model_class, register_model, registered_models
from pytal.models.cltdr_gmg.model import CLTDRGMG  # registers "cltdr_gmg"
from pytal.models.seqattnet.model import SeqAttNet  # registers "seqattnet"
from pytal.models.talmts.model import TALMTS  # registers "talmts"

__all__ = ["CLTDRGMG", "Detector", "ModelConfig", "SeqAttNet", "TALMTS", "build_model", "model_class",
           "register_model", "registered_models"]
