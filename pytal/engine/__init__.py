"""Training, evaluation and inference loops, checkpoints.

    from pytal.engine import Trainer, infer_dataset
    trainer = Trainer(cfg, "runs/x")          # cfg: pytal.config.load_config(...)
    best = trainer.fit()                      # or fit(resume="runs/x/last.pt")

The engine knows no concrete detector: it builds ``cfg.model.name`` through the registry and
calls the protocol of :mod:`pytal.models.protocol` (``model(batch)``, ``model.predict(batch)``,
``convert_state_dict``). Modules: ``schedule`` (warm-up + cosine), ``ema``
(weight EMA), ``checkpoint`` (atomic save / load), ``data`` (datasets and loaders from the
config), ``inference`` (detections JSON), ``class_scores`` (external video-level class
scores, ``eval.ext_score_file``), ``loading`` (models from checkpoints, items
from bare feature files), ``distributed`` (torchrun process groups, evaluation sharding and
gathering), ``trainer`` (the loop; DistributedDataParallel when a process group runs).

Several processes: ``torchrun --nproc_per_node=N -m pytal train CONFIG --output RUN_DIR``
(gloo on the CPU, nccl with one GPU per process; ``train.batch_size`` is per process).
"""
from pytal.engine.data import build_dataset
from pytal.engine.checkpoint import CHECKPOINT_FORMAT, atomic_save, load_checkpoint
from pytal.engine.class_scores import VideoClassScores
from pytal.engine.ema import ModelEMA
from pytal.engine.inference import (detections_json, infer_batches, infer_dataset,
                                    infer_with_config)
from pytal.engine.loading import class_names_of, detection_class_names, feature_items, load_model
from pytal.engine.schedule import WarmupCosine, build_scheduler
from pytal.engine.trainer import Trainer, build_optimizer, param_groups, seed_everything

__all__ = ["CHECKPOINT_FORMAT", "ModelEMA", "Trainer", "VideoClassScores", "WarmupCosine",
           "atomic_save", "build_dataset", "build_scheduler", "class_names_of", "detection_class_names", "feature_items", "load_model", "detections_json", "infer_batches", "infer_with_config",
           "infer_dataset", "load_checkpoint", "param_groups", "seed_everything", "build_optimizer"]
