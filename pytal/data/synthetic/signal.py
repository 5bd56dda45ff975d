"""What the synthetic features look like: a learnable, not trivial, signal on a noisy background.

Every strength is in units of the background noise's standard deviation along any direction
(the noise is isotropic with unit variance per channel), so the difficulty does not depend on
``feat_dim``. A feature at step ``i`` is

    noise_i + scene + sum over actions a:  coverage_a(i) * s_a * d_a
                    + onset(i - start_a) + offset(i - end_a)
                    + sum over background events e:  coverage_e(i) * s_e * d_e

* ``noise``: temporally correlated like real clip features (a box filter over
  ``num_frames / feat_stride`` steps, the overlap of consecutive windows), drawn from a
  seed-determined bank (rolled along channels and time per video) so writing is memory-bound.
* ``scene``: a constant random offset per video.
* ``coverage(i)``: the fraction of feature i's frame window inside the action, so boundaries
  ramp over one window and actions shorter than a window are weaker, as with real features.
* ``d_a``: the class prototype plus a random per-instance direction (``instance_spread``),
  scaled by ``s_a = action * U(1 - action_jitter, 1 + action_jitter)``. A ``confusable_fraction``
  of the classes have prototypes with cosine ``confusable_similarity`` to another class.
* ``onset`` / ``offset``: two class-agnostic patterns, Gaussian bumps of ``boundary_width``
  steps around each action's start and end.
* background events: ``distractors_per_minute`` segments whose direction half resembles a random
  class (``distractor_class_mix``), without boundary patterns.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pytal.data.synthetic.layout import VideoSpec
from pytal.data.timing import FeatureGrid


@dataclass(frozen=True)
class SignalConfig:
    """Strength and shape of the synthetic signal (see the module docstring)."""

    action: float = 3.0
    action_jitter: float = 0.3
    instance_spread: float = 0.5
    confusable_fraction: float = 0.3
    confusable_similarity: float = 0.8
    boundary: float = 3.0
    boundary_width: float = 1.0
    scene: float = 1.0
    distractors_per_minute: float = 2.0
    distractor: float = 2.0
    distractor_class_mix: float = 0.5
    noise_bank_steps: int = 8192


def _unit_rows(rng: np.random.Generator, rows: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((rows, dim))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _orthogonal_mix(base: np.ndarray, other: np.ndarray, cosine: float) -> np.ndarray:
    """A unit vector with the given cosine to unit ``base``, in the plane of ``base`` and ``other``."""
    ortho = other - (other @ base) * base
    ortho /= np.linalg.norm(ortho) + 1e-12
    return cosine * base + math.sqrt(max(0.0, 1.0 - cosine ** 2)) * ortho


class FeatureSynthesizer:
    """Dataset-level patterns (prototypes, boundary patterns, noise bank) from one seed.

    Args:
        num_classes, feat_dim: classes and channels C.
        noise_window: steps of the temporal box filter (``num_frames / feat_stride``).
        config: strengths; seed: makes everything above deterministic.
    """

    def __init__(self, num_classes: int, feat_dim: int, *, noise_window: int,
                 config: SignalConfig, seed: int) -> None:
        if feat_dim < 2:
            raise ValueError(f"feat_dim must be >= 2, got {feat_dim}")
        self.config = config
        self.feat_dim = feat_dim
        rng = np.random.default_rng([seed, 1])
        protos = _unit_rows(rng, num_classes, feat_dim)
        num_confusable = int(round(config.confusable_fraction * num_classes)) if num_classes > 1 else 0
        for c in rng.permutation(num_classes)[:num_confusable]:
            partner = (c + 1 + int(rng.integers(num_classes - 1))) % num_classes
            protos[c] = _orthogonal_mix(protos[partner], protos[c], config.confusable_similarity)
        self.prototypes = protos.astype(np.float32)                      # (K, C)
        self.onset, self.offset = _unit_rows(rng, 2, feat_dim).astype(np.float32)
        self.noise_bank = self._noise_bank(rng, config.noise_bank_steps, max(1, noise_window))

    def _noise_bank(self, rng: np.random.Generator, steps: int, window: int) -> np.ndarray:
        """(steps, C) unit-variance noise, circularly box-filtered over ``window`` steps."""
        white = rng.standard_normal((steps, self.feat_dim), dtype=np.float32)
        bank = white.copy()
        for k in range(1, window):
            bank += np.roll(white, k, axis=0)
        bank *= np.float32(1.0 / math.sqrt(window))
        return bank

    def features(self, spec: VideoSpec, grid: FeatureGrid, num_steps: int,
                 rng: np.random.Generator) -> np.ndarray:
        """(num_steps, C) float32 features of one video on ``grid``."""
        cfg = self.config
        scene = (cfg.scene * _unit_rows(rng, 1, self.feat_dim)[0]).astype(np.float32)
        out = self._background(num_steps, scene, rng)
        for (start, end), label in zip(spec.segments, spec.labels):
            if end <= start:
                continue
            direction = self.prototypes[label] + cfg.instance_spread * _unit_rows(rng, 1, self.feat_dim)[0]
            strength = cfg.action * rng.uniform(1 - cfg.action_jitter, 1 + cfg.action_jitter)
            self._add_segment(out, grid, start, end, strength * direction / np.linalg.norm(direction))
            for t, pattern in ((start, self.onset), (end, self.offset)):
                self._add_bump(out, grid.to_steps(t), cfg.boundary_width, cfg.boundary * pattern)
        num_events = rng.poisson(cfg.distractors_per_minute * spec.duration / 60.0)
        for _ in range(num_events):
            length = math.exp(rng.uniform(math.log(0.5), math.log(10.0)))
            start = rng.uniform(-length / 2, spec.duration - length / 2)
            cls = int(rng.integers(len(self.prototypes)))
            direction = _orthogonal_mix(self.prototypes[cls].astype(np.float64),
                                        _unit_rows(rng, 1, self.feat_dim)[0], cfg.distractor_class_mix)
            strength = cfg.distractor * rng.uniform(0.7, 1.3)
            self._add_segment(out, grid, start, start + length, strength * direction)
        return out

    def _background(self, num_steps: int, scene: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Noise from the bank at a random time offset and channel roll, plus ``scene``."""
        bank = self.noise_bank
        steps, dim = bank.shape
        out = np.empty((num_steps, dim), dtype=np.float32)
        shift = int(rng.integers(dim))
        src = int(rng.integers(steps))
        pos = 0
        while pos < num_steps:
            n = min(num_steps - pos, steps - src)
            np.add(bank[src:src + n, shift:], scene[:dim - shift], out=out[pos:pos + n, :dim - shift])
            np.add(bank[src:src + n, :shift], scene[dim - shift:], out=out[pos:pos + n, dim - shift:])
            pos, src = pos + n, 0
        return out

    @staticmethod
    def _add_segment(out: np.ndarray, grid: FeatureGrid, start: float, end: float,
                     vector: np.ndarray) -> None:
        """Add ``coverage(i) * vector`` for the steps whose window overlaps [start, end] seconds."""
        first_frame, last_frame = start * grid.fps, end * grid.fps
        lo = max(0, math.ceil((first_frame - grid.num_frames) / grid.feat_stride))
        hi = min(len(out), math.floor(last_frame / grid.feat_stride) + 1)
        if hi <= lo:
            return
        window_start = np.arange(lo, hi) * grid.feat_stride
        covered = (np.minimum(window_start + grid.num_frames, last_frame)
                   - np.maximum(window_start, first_frame))
        coverage = np.clip(covered / grid.num_frames, 0.0, 1.0).astype(np.float32)
        out[lo:hi] += coverage[:, None] * vector.astype(np.float32)[None, :]

    @staticmethod
    def _add_bump(out: np.ndarray, centre: float, width: float, vector: np.ndarray) -> None:
        """Add a Gaussian bump (``width`` steps) of ``vector`` centred at step ``centre``."""
        lo = max(0, math.floor(centre - 3 * width))
        hi = min(len(out), math.ceil(centre + 3 * width) + 1)
        if hi <= lo:
            return
        weight = np.exp(-0.5 * ((np.arange(lo, hi) - centre) / width) ** 2).astype(np.float32)
        out[lo:hi] += weight[:, None] * vector[None, :]
