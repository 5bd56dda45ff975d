"""``train.optimizer``: adamw (default, decoupled weight decay) or adam (weight decay added to
the gradients, the TAL-MTS paper's), typed in the config and built by the engine."""
import pytest
import torch
from torch import nn

from pytal.config import ConfigError, load_config
from pytal.engine import build_optimizer


def _step(optimizer_name: str) -> tuple[torch.optim.Optimizer, float]:
    """One step from weight 1 with a zero loss gradient, lr 0.01, weight decay 0.1."""
    cfg = load_config("talmts_small", {"train.optimizer": optimizer_name, "train.lr": 0.01,
                                       "train.weight_decay": 0.1})
    layer = nn.Linear(1, 1, bias=False)
    nn.init.ones_(layer.weight)
    opt = build_optimizer(layer, cfg.train)
    layer.weight.grad = torch.zeros_like(layer.weight)
    opt.step()
    return opt, layer.weight.detach().item()


def test_adam_and_adamw_by_hand():
    adam, w = _step("adam")
    assert type(adam) is torch.optim.Adam
    # the decay 0.1 * w is Adam's gradient: the first step moves w by lr * g / |g| = 0.01
    assert w == pytest.approx(1 - 0.01, abs=1e-6)
    adamw, w = _step("adamw")
    assert type(adamw) is torch.optim.AdamW
    assert w == pytest.approx(1 - 0.01 * 0.1, abs=1e-7)   # decoupled: w (1 - lr wd)


def test_config_choice():
    assert load_config("cltdr_gmg_small").train.optimizer == "adamw"
    for name in ("talmts_small", "talmts_thumos", "talmts_anet"):
        assert load_config(name).train.optimizer == "adam"          # the paper's
    with pytest.raises(ConfigError, match=r"train.optimizer must be one of adamw, adam"):
        load_config("talmts_small", {"train.optimizer": "sgd"})


def test_bias_and_norm_weights_are_not_decayed():
    cfg = load_config("talmts_small", {"train.optimizer": "adam", "train.weight_decay": 0.5})
    opt = build_optimizer(nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2)), cfg.train)
    decays = sorted((g["weight_decay"], len(g["params"])) for g in opt.param_groups)
    assert decays == [(0.0, 3), (0.5, 1)]
