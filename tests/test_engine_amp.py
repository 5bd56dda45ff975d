"""Mixed precision (train.amp): bf16 steps on the CPU, config errors, the loss scaler's
unscale-before-clip and its checkpointed state, fp16 on CUDA."""
from __future__ import annotations

import pytest
import torch

from pytal.config import ConfigError, load_config
from pytal.engine import Trainer
from pytal.engine.amp import MixedPrecision

from test_engine import _assert_same_state, tiny, tiny_config  # noqa: F401  (fixture)


def test_bf16_steps_on_cpu_are_autocast_and_finite(tiny):
    trainer = Trainer(tiny_config(tiny, "train.amp=bf16", "train.epochs=1"), None, progress=False)
    dtypes = set()
    conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv1d))
    conv.register_forward_hook(lambda mod, args, out: dtypes.add(out.dtype))
    stats = trainer.train_one_epoch()
    assert torch.bfloat16 in dtypes                      # the forward ran under autocast
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values()), stats
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


@pytest.mark.parametrize("value", ["fp32", "float16", "BF16"])
def test_bad_amp_value_names_key_and_choices(value):
    with pytest.raises(ConfigError, match=r"train\.amp must be one of none, bf16, fp16, got "):
        load_config("cltdr_gmg_small", [f"train.amp={value}"])


def test_amp_must_be_a_string():
    with pytest.raises(ConfigError, match="train.amp must be one of none, bf16, fp16, got 16"):
        load_config("cltdr_gmg_small", {"train.amp": 16})


def test_fp16_on_cpu_is_an_early_error(tiny):
    with pytest.raises(ValueError, match=r"train\.amp='fp16' needs a CUDA device.*none, bf16"):
        Trainer(tiny_config(tiny, "train.amp=fp16"), None, progress=False)


def _with_scaler(trainer: Trainer) -> Trainer:
    """The fp16 scaler machinery on the CPU (float32 compute, power-of-two scales: exact)."""
    trainer.amp.scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 8, growth_interval=1)
    return trainer


def test_scaler_unscales_before_clipping_and_resumes(tiny, tmp_path):
    cfg = tiny_config(tiny, "train.clip_grad_l2norm=0.01")     # clipping active every step
    plain = Trainer(cfg, None, progress=False)
    plain.fit()
    full = _with_scaler(Trainer(cfg, str(tmp_path / "full"), progress=False))
    full.fit()
    # a scaled loss unscaled before clipping gives the very same weights
    _assert_same_state(plain.model.state_dict(), full.model.state_dict(), "scaled vs plain")
    steps = full.scheduler.state_dict()["last_epoch"]
    assert full.amp.scaler.get_scale() == 2.0 ** (8 + steps)   # grew once per step

    first = _with_scaler(Trainer(cfg, str(tmp_path / "split"), progress=False))
    first.fit(stop_after=1)
    second = _with_scaler(Trainer(cfg, str(tmp_path / "split"), progress=False))
    second.fit(resume=str(tmp_path / "split" / "last.pt"))
    assert second.amp.scaler.get_scale() == full.amp.scaler.get_scale()
    _assert_same_state(full.model.state_dict(), second.model.state_dict(), "resumed")


def test_mixed_precision_none_is_plain_float32():
    amp = MixedPrecision("none", "cpu")
    assert amp.scaler is None and amp.state_dict() == {"mode": "none", "scaler": None}
    with amp.autocast():
        assert not torch.is_autocast_enabled("cpu")


@pytest.mark.cuda
def test_fp16_on_cuda_trains_and_resumes_the_scale(tiny, tmp_path):
    cfg = tiny_config(tiny, "train.amp=fp16")
    full = Trainer(cfg, str(tmp_path / "full"), device="cuda", progress=False)
    full.fit()
    first = Trainer(cfg, str(tmp_path / "split"), device="cuda", progress=False)
    first.fit(stop_after=1)
    second = Trainer(cfg, str(tmp_path / "split"), device="cuda", progress=False)
    second.fit(resume=str(tmp_path / "split" / "last.pt"))
    assert second.amp.scaler.get_scale() == full.amp.scaler.get_scale()
    assert all(torch.isfinite(p).all() for p in second.model.parameters())
