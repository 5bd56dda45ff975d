"""``train.amp=bf16`` against float32 on the same model, data and seed: two epochs of training
steps on the CPU.

Stated tolerance: each epoch's mean losses within 1% (relative) of float32's, and the bf16
weights after two epochs within 20% of float32's update (``|w_bf16 - w_fp32| <= 0.2
|w_fp32 - w_init|``, over all parameters). Measured on this config: 1e-4 and 6%.
"""
from __future__ import annotations

import pytest
import torch

from pytal.engine import Trainer

from test_engine import tiny, tiny_config  # noqa: F401  (fixture)


def _train(ds, amp):
    cfg = tiny_config(ds, f"train.amp={amp}", "train.epochs=2", "train.model_ema=false",
                      "model.droppath=0.0", "model.input_noise=0.0")
    trainer = Trainer(cfg, None, progress=False)
    dtypes = set()
    conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv1d))
    conv.register_forward_hook(lambda mod, args, out: dtypes.add(out.dtype))
    init = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    stats = [trainer.train_one_epoch(), trainer.train_one_epoch()]
    return init, trainer.model.state_dict(), stats, dtypes


def _norm(tensors):
    return float(sum((t.double() ** 2).sum() for t in tensors) ** 0.5)


def test_bf16_training_is_within_tolerance_of_float32(tiny):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        init32, w32, stats32, dtypes32 = _train(tiny, "none")
        init16, w16, stats16, dtypes16 = _train(tiny, "bf16")
    finally:
        torch.set_num_threads(threads)
    assert dtypes32 == {torch.float32} and torch.bfloat16 in dtypes16
    assert all(torch.equal(init32[k], init16[k]) for k in init32)       # same start
    for epoch, (a, b) in enumerate(zip(stats32, stats16)):
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-2), (epoch, key)
    assert stats32 != stats16                                          # bf16 did round
    floats = [k for k in w32 if w32[k].is_floating_point()]
    update = _norm(w32[k] - init32[k] for k in floats)
    gap = _norm(w16[k] - w32[k] for k in floats)
    assert update > 0 and gap <= 0.2 * update, (gap, update)
