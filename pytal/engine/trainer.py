"""The training loop: AdamW or Adam (``train.optimizer``), warm-up + cosine, gradient
clipping, EMA, mixed precision (``train.amp``), periodic evaluation, best-checkpoint selection,
exact resume, and the same in several processes (DistributedDataParallel, see
:mod:`pytal.engine.distributed`)."""
from __future__ import annotations

import functools
import logging
import math
import os
import random
import time
from typing import Any, Mapping, Optional

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Subset
from torch.utils.data.distributed import DistributedSampler

from pytal.config import Config
from pytal.data.batch import Batch
from pytal.io.atomic import remove_torn_writes
from pytal.io.jsonio import write_json
from pytal.engine.amp import MixedPrecision
from pytal.engine.checkpoint import (CHECKPOINT_FORMAT, CheckpointError, atomic_save,
                                     load_checkpoint)
from pytal.engine.data import build_dataset, train_loader
from pytal.engine.distributed import (all_gather_objects, barrier, broadcast_object, dist_info,
                                      merge_detections, shard_indices)
from pytal.engine.ema import ModelEMA
from pytal.engine.class_scores import VideoClassScores
from pytal.engine.inference import infer_with_config
from pytal.engine.progress import progress_bar
from pytal.engine.schedule import build_scheduler
from pytal.video.manifest import extraction_settings

__all__ = ["OPTIMIZERS", "Trainer", "build_optimizer", "param_groups", "seed_everything"]

LOG = logging.getLogger("pytal.engine")
LAST, BEST = "last.pt", "best.pt"


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Optimiser groups: weight decay on weights of rank >= 2 only (not biases, norms, scales)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


#: ``train.optimizer`` -> the torch optimiser class.
OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}


def build_optimizer(model: nn.Module, settings: Any) -> torch.optim.Optimizer:
    """The ``train.optimizer`` of ``settings`` (a :class:`~pytal.config.TrainConfig`) over
    :func:`param_groups` of ``model`` at ``train.lr``: ``adamw`` decouples the weight decay,
    ``adam`` adds it to the gradients."""
    return OPTIMIZERS[settings.optimizer](param_groups(model, settings.weight_decay),
                                          lr=settings.lr)


def _rng_state(generators: Mapping[str, torch.Generator]) -> dict[str, Any]:
    """Every RNG's state as tensors, numbers and tuples (what a weights-only load reads)."""
    name, key, *rest = np.random.get_state()
    return {"python": random.getstate(),
            "numpy": (name, torch.from_numpy(key.astype(np.int64)), *rest),
            "torch": torch.get_rng_state(),
            "generators": {k: g.get_state() for k, g in generators.items()}}


def _set_rng_state(state: Mapping[str, Any], generators: Mapping[str, torch.Generator]) -> None:
    random.setstate(state["python"])
    name, key, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(key).astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    for k, g in generators.items():
        g.set_state(state["generators"][k])


class Trainer:
    """Train a detector built from ``cfg`` and evaluate it on ``dataset.val_subset``.

    Args:
        cfg: the typed config (:func:`pytal.config.load_config`): ``model`` builds the
            detector, ``dataset`` the data, ``train`` the loop, ``eval`` the evaluation.
        output_dir: run folder: ``last.pt`` (resumable), ``best.pt`` (selected weights),
            ``metrics.json`` (the best evaluation: :func:`pytal.evaluation.evaluate`'s dict
            plus ``epoch``), ``history.json``, ``detections.json`` (val subset, best model),
            ``train.log``. ``None``: nothing is written.
        device: where to train. progress: progress bars (drawn only on a terminal).
        model: a prebuilt model (default ``pytal.models.build_model(cfg)``, seeded with
            ``train.seed``). Any detector of :mod:`pytal.models.protocol`: the trainer calls
            ``model(batch)`` for the losses and ``model.predict(batch)`` to evaluate.

    ``fit()`` runs ``train.epochs`` epochs; ``fit(resume=path)`` continues from a ``last.pt``
    exactly as if never interrupted (model, EMA, optimiser, scheduler, epoch, every RNG, the
    model's loss normaliser, the fp16 loss scale). Checkpoints are saved at epoch ends only.

    Distributed: when a ``torch.distributed`` process group is running (``torchrun ... pytal
    train``, see :mod:`pytal.engine.distributed`), every rank builds the same model (same seed;
    DistributedDataParallel also broadcasts rank 0's weights), wraps it in DDP for the training
    steps and reads its own share of the training videos through a ``DistributedSampler``
    (reshuffled each epoch with ``set_epoch``): ``train.batch_size`` is per rank, so a step sees
    ``world_size * batch_size`` videos. Crops and the model's noise use per-rank seeds; the loss
    normaliser is per rank. Evaluation is sharded (each rank infers every ``world_size``-th
    validation video), detections are gathered on every rank, rank 0 computes the metrics and
    broadcasts them so every rank selects the same best epoch. Only rank 0 logs, shows progress
    bars and writes files (atomically; the others wait at a barrier). Checkpoints hold the
    unwrapped model's state (no ``module.`` prefix), so single-process and DDP checkpoints are
    interchangeable; ``last.pt`` also keeps every rank's RNG and normaliser state, for an exact
    resume with the same number of processes.
    """

    def __init__(self, cfg: Config, output_dir: Optional[str] = None, *,
                 device: torch.device | str = "cpu", progress: bool = True,
                 model: Optional[nn.Module] = None) -> None:
        from pytal.models import build_model

        if not isinstance(cfg, Config):
            raise TypeError("Trainer: expected a pytal.config.Config (pytal.config.load_config), "
                            f"got {type(cfg).__name__}")
        self.cfg = cfg
        self.settings = s = cfg.train
        self.output_dir = output_dir
        self.device = torch.device(device)
        self.amp = MixedPrecision(s.amp, self.device)      # fp16 on a CPU fails here, early
        self.dist = dist_info()
        rank = self.dist.rank
        self.progress = progress and self.dist.is_main
        seed_everything(s.seed)
        self.generators = {"sampler": torch.Generator().manual_seed(s.seed),
                           "crops": torch.Generator().manual_seed(s.seed + 1 + rank)}
        self.model = (model if model is not None else build_model(cfg)).to(self.device)
        if self.dist.distributed:
            seed_everything(s.seed + 7919 * rank)      # same init above, per-rank noise below
        self.train_set = build_dataset(cfg, "train", generator=self.generators["crops"])
        self.sampler = (DistributedSampler(self.train_set, num_replicas=self.dist.world_size,
                                           rank=rank, shuffle=True, seed=s.seed)
                        if self.dist.distributed else None)
        self.loader = train_loader(self.train_set, batch_size=s.batch_size,
                                   num_workers=s.num_workers, generator=self.generators["sampler"],
                                   sampler=self.sampler)
        #: what the training steps call: the DDP wrapper, or the model itself
        self.train_module: nn.Module = self.model
        if self.dist.distributed:
            # a level's offset scale gets no gradient in a batch without a positive at that
            # level, hence find_unused_parameters (one graph traversal per step)
            self.train_module = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True)
        if len(self.loader) == 0:
            raise ValueError("Trainer: the training subset gives no batch")
        self.optimizer = build_optimizer(self.model, s)
        steps = len(self.loader)
        self.scheduler = build_scheduler(self.optimizer, warmup_steps=round(s.warmup_epochs * steps),
                                         total_steps=s.epochs * steps, base_lr=s.lr,
                                         eta_min=s.eta_min)
        self.ema = ModelEMA(self.model, s.ema_decay) if s.model_ema else None
        self.epoch = 0                      # epochs completed
        self.best: Optional[dict[str, Any]] = None
        self.history: list[dict[str, Any]] = []
        self.train_seconds = 0.0
        self._val_set = None
        #: the feature folder's extraction settings (manifest.json), kept in checkpoints
        self.extraction = extraction_settings(cfg.dataset.feature_dir)
        if not self.dist.is_main:
            LOG.setLevel(logging.WARNING)
        elif output_dir is not None:
            os.makedirs(output_dir, exist_ok=True)
            self._add_log_file(os.path.join(output_dir, "train.log"))
            for path in remove_torn_writes(output_dir):
                LOG.warning("removed %s, the partial write of a run that was killed", path)

    # ------------------------------------------------------------------ state
    def _add_log_file(self, path: str) -> None:
        LOG.setLevel(logging.INFO)
        if not any(getattr(h, "baseFilename", None) == os.path.abspath(path) for h in LOG.handlers):
            handler = logging.FileHandler(path)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            LOG.addHandler(handler)

    def _rank_state(self) -> dict[str, Any]:
        """What differs between ranks: the RNGs and the loss normaliser."""
        norm = getattr(self.model, "loss_normalizer", None)
        return {"rng": _rng_state(self.generators),
                "loss_normalizer": None if norm is None else norm.state_dict()}

    def _load_rank_state(self, state: Mapping[str, Any]) -> None:
        _set_rng_state(state["rng"], self.generators)
        norm = getattr(self.model, "loss_normalizer", None)
        if norm is not None and state.get("loss_normalizer") is not None:
            norm.load_state_dict(state["loss_normalizer"])

    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`load_state_dict` needs to continue exactly. Distributed: a
        collective (every rank must call it); ``ranks`` then lists every rank's RNG and loss
        normaliser state (``rng`` and ``loss_normalizer`` are rank 0's)."""
        ranks = all_gather_objects(self._rank_state())
        state = {"format": CHECKPOINT_FORMAT, "config": self.cfg.to_dict(), "epoch": self.epoch,
                 "model": self.model.state_dict(),
                 "ema": None if self.ema is None else self.ema.state_dict(),
                 "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "amp": self.amp.state_dict(),
                 **ranks[0], "best": self.best,
                 "history": self.history, "train_seconds": self.train_seconds,
                 "extraction": self.extraction}
        if len(ranks) > 1:
            state["ranks"] = ranks
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict`'s output (a checkpoint of a single process or of
        any number of ranks; the RNGs are exact only with the same number of processes)."""
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            if state.get("ema") is None:
                raise ValueError("checkpoint has no EMA weights but train.model_ema is true")
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.amp.load_state_dict(state.get("amp"))
        ranks = state.get("ranks") or [state]
        rank, world = self.dist.rank, self.dist.world_size
        if len(ranks) == world:
            self._load_rank_state(ranks[rank])
        else:
            LOG.warning("checkpoint written by %d process(es), resumed with %d: the random "
                        "streams continue differently than without the interruption",
                        len(ranks), world)
            self._load_rank_state(ranks[0])
            if rank > 0:                                 # keep the ranks' streams apart
                seed_everything(self.settings.seed + 7919 * rank + int(state["epoch"]))
                self.generators["crops"].manual_seed(self.settings.seed + 1 + rank
                                                     + 7919 * int(state["epoch"]))
        self.epoch = int(state["epoch"])
        self.best = state.get("best")
        self.history = list(state.get("history", []))
        self.train_seconds = float(state.get("train_seconds", 0.0))

    def eval_model(self) -> nn.Module:
        """The weights evaluated and saved as best: the EMA copy when enabled."""
        return self.ema.module if self.ema is not None else self.model

    # ------------------------------------------------------------------ loop
    def fit(self, resume: Optional[str] = None, *,
            stop_after: Optional[int] = None) -> Optional[dict[str, Any]]:
        """Train to ``train.epochs``; returns the best evaluation (``None`` without one).
        ``resume``: a ``last.pt`` to continue from. ``stop_after``: return once that many
        epochs are done (the schedule still spans ``train.epochs``; resume later)."""
        if resume is not None:
            state = load_checkpoint(resume, map_location=self.device)
            try:
                self.load_state_dict(state)
            except (KeyError, TypeError, RuntimeError) as err:
                detail = " ".join(str(err).split())[:300]
                raise CheckpointError(f"{resume}: not a resumable checkpoint of this config "
                                      f"({type(err).__name__}: {detail})") from None
            LOG.info("resumed from %s at epoch %d", resume, self.epoch)
        s = self.settings
        end = s.epochs if stop_after is None else min(s.epochs, stop_after)
        while self.epoch < end:
            start = time.perf_counter()
            stats = self.train_one_epoch()
            self.train_seconds += time.perf_counter() - start
            self.epoch += 1
            LOG.info("epoch %d/%d: %s (%.1f s)", self.epoch, s.epochs,
                     " ".join(f"{k}={v:.4f}" for k, v in stats.items()),
                     time.perf_counter() - start)
            last = self.epoch == s.epochs
            if last or (s.eval_every and self.epoch % s.eval_every == 0):
                self.evaluate_and_select()
            if self.output_dir is not None and (last or self.epoch % s.checkpoint_every == 0):
                state = self.state_dict()                  # a collective when distributed
                if self.dist.is_main:
                    atomic_save(state, os.path.join(self.output_dir, LAST))
                barrier()
        return self.best

    def train_one_epoch(self) -> dict[str, float]:
        """One pass over the training loader; returns the mean of each loss (over every rank's
        steps when distributed: a collective)."""
        s, model = self.settings, self.train_module
        model.train()
        if self.sampler is not None:
            self.sampler.set_epoch(self.epoch)
        sums: dict[str, float] = {}
        bar = progress_bar(self.loader, progress=self.progress,
                           desc=f"epoch {self.epoch + 1}/{s.epochs}")
        for batch in bar:
            with self.amp.autocast():
                losses = model(Batch.from_collated(batch).to(self.device))
            loss = losses["loss"]
            if not torch.isfinite(loss):
                raise FloatingPointError(f"epoch {self.epoch + 1}: non-finite loss {loss.item()}")
            self.optimizer.zero_grad(set_to_none=True)
            self.amp.backward(loss)
            self.amp.step(self.optimizer, self.model.parameters(), s.clip_grad_l2norm)
            self.scheduler.step()
            if self.ema is not None:
                self.ema.update(self.model)
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
        means = all_gather_objects({k: v / len(self.loader) for k, v in sums.items()})
        return {k: sum(m[k] for m in means) / len(means) for k in means[0]}

    # ------------------------------------------------------------------ evaluation
    @property
    def val_set(self):
        if self._val_set is None:
            self._val_set = build_dataset(self.cfg, "val")
        return self._val_set

    @functools.cached_property
    def class_scores(self) -> Optional[VideoClassScores]:
        """``eval.ext_score_file`` read for the validation classes (None when it is not set)."""
        return VideoClassScores.from_config(self.cfg.eval, self.val_set.class_names)

    def evaluate(self, model: Optional[nn.Module] = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(metrics, detections)`` of ``model`` (default :meth:`eval_model`) on
        ``dataset.val_subset``, at ``eval.tiou_thresholds``. Distributed: a collective; each
        rank infers its shard of the videos and every rank returns the same result."""
        model = self.eval_model() if model is None else model
        info, val = self.dist, self.val_set
        items = Subset(val, shard_indices(len(val), info.rank, info.world_size)) \
            if info.distributed else val
        detections = infer_with_config(model, items, self.cfg, val.class_names, device=self.device,
                                       progress=self.progress, class_scores=self.class_scores)
        if info.distributed:
            detections = merge_detections(all_gather_objects(detections))
        return self.evaluate_from(detections)

    def evaluate_from(self, detections: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(metrics, detections)`` of a detections JSON dict on ``dataset.val_subset``.
        Distributed: a collective; rank 0 evaluates and broadcasts the metrics."""
        from pytal.evaluation import evaluate_model_detections

        metrics = None
        if self.dist.is_main:
            data = self.cfg.dataset
            metrics = evaluate_model_detections(
                data.annotation_file, detections, subset=data.val_subset,
                tiou_thresholds=list(self.cfg.eval.tiou_thresholds),
                label_space=data.label_space, class_agnostic=self.cfg.evaluates_class_agnostic)
        return broadcast_object(metrics), dict(detections)

    def evaluate_and_select(self) -> dict[str, Any]:
        """Evaluate; when the average mAP is the best so far, save ``best.pt``,
        ``metrics.json`` and ``detections.json``."""
        metrics, detections = self.evaluate()
        metrics = {**metrics, "epoch": self.epoch}
        subs = {"sub_averages": metrics["sub_averages"]} if "sub_averages" in metrics else {}
        self.history.append({"epoch": self.epoch, "average_mAP": metrics["average_mAP"],
                             "mAP": metrics["mAP"], **subs})
        LOG.info("epoch %d: %saverage mAP %.4f%s (%s)", self.epoch,
                 "class-agnostic " if metrics.get("class_agnostic") else "", metrics["average_mAP"],
                 "".join(f", avg {k} {v:.4f}" for k, v in subs.get("sub_averages", {}).items()),
                 " ".join(f"{t:.2f}:{m:.4f}" for t, m in zip(metrics["tiou_thresholds"], metrics["mAP"])))
        if "proposals" in metrics:
            LOG.info("epoch %d: proposals AR@100 %.4f AUC %.4f", self.epoch,
                     metrics["proposals"]["AR@100"], metrics["proposals"]["AUC"])
        writes = self.output_dir is not None and self.dist.is_main
        if self.best is None or metrics["average_mAP"] > self.best["average_mAP"]:
            self.best = metrics
            if writes:
                atomic_save({"format": CHECKPOINT_FORMAT, "config": self.cfg.to_dict(),
                             "epoch": self.epoch, "model": self.eval_model().state_dict(),
                             "class_names": list(self.val_set.class_names),
                             "extraction": self.extraction},
                            os.path.join(self.output_dir, BEST))
                write_json(os.path.join(self.output_dir, "metrics.json"), metrics, indent=2)
                write_json(os.path.join(self.output_dir, "detections.json"), detections)
        if writes:
            write_json(os.path.join(self.output_dir, "history.json"), self.history, indent=2)
        barrier()
        return metrics
