"""The training loop's bookkeeping with known numbers: EMA arithmetic, the best-epoch choice
(best.pt, metrics.json, detections.json) under a stubbed evaluation, ``eval_every`` and
``checkpoint_every``, and drop path. Runs go through ``pytal train`` on files on disk."""
from __future__ import annotations

import json
import sys

import pytest
import torch
from torch import nn

import pytal.evaluation
from pytal.cli import main
from pytal.data.synthetic import write_dataset
from pytal.engine import ModelEMA, load_checkpoint
from pytal.nn.drop import AffineDropPath, drop_path

TINY = ["model.embd_dim=16", "model.fpn_dim=16", "model.head_dim=16", "model.head_num_layers=1",
        "model.gmg_mlp_dim=16", "model.backbone_arch=[1,1,2]", "model.num_bins=4",
        "model.regression_range=[[0,4],[4,8],[8,10000]]", "dataset.max_seq_len=64"]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------------------------ EMA

def test_ema_after_two_updates_with_known_decay():
    model = nn.Linear(2, 1, dtype=torch.float64)
    model.register_buffer("steps", torch.tensor(0))
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.bias.fill_(-2.0)
    ema = ModelEMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(2.0)
        model.bias.fill_(0.0)
        model.steps.fill_(1)
    ema.update(model)
    # 0.9 * 1 + 0.1 * 2 = 1.1; 0.9 * -2 + 0.1 * 0 = -1.8
    assert ema.module.weight.flatten().tolist() == pytest.approx([1.1, 1.1], abs=1e-12)
    assert ema.module.bias.tolist() == pytest.approx([-1.8], abs=1e-12)
    with torch.no_grad():
        model.weight.fill_(4.0)
        model.bias.fill_(1.0)
        model.steps.fill_(2)
    ema.update(model)
    # 0.9 * 1.1 + 0.1 * 4 = 1.39; 0.9 * -1.8 + 0.1 * 1 = -1.52
    assert ema.module.weight.flatten().tolist() == pytest.approx([1.39, 1.39], abs=1e-12)
    assert ema.module.bias.tolist() == pytest.approx([-1.52], abs=1e-12)
    assert int(ema.module.steps) == 2                      # integer buffers are copied
    assert model.weight.tolist() == [[4.0, 4.0]]           # the model itself is untouched
    assert not ema.module.training and not any(p.requires_grad for p in ema.module.parameters())


def test_ema_state_round_trip():
    model = nn.Linear(3, 2)
    ema = ModelEMA(model, decay=0.5)
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    other = ModelEMA(nn.Linear(3, 2), decay=0.9)
    other.load_state_dict(ema.state_dict())
    assert other.decay == 0.5
    assert torch.equal(other.module.weight, ema.module.weight)


# ------------------------------------------------------------------------------ drop path

def test_drop_path_zeroes_whole_samples_and_keeps_the_expectation():
    torch.manual_seed(0)
    p, n = 0.25, 4000
    x = torch.rand(n, 3, 5, dtype=torch.float64) + 0.5
    y = drop_path(x, p, training=True)
    dropped = (y == 0).flatten(1).all(1)
    kept = ~dropped
    # each sample is either all zero or x / (1 - p), never anything else
    torch.testing.assert_close(y[kept], x[kept] / (1 - p), rtol=1e-12, atol=0)
    assert not (y[dropped] != 0).any()
    # fraction dropped ~ Binomial(n, p) / n: 5 standard deviations
    assert abs(dropped.double().mean().item() - p) < 5 * (p * (1 - p) / n) ** 0.5
    # E[y] = x: mean over samples of y / x is 1 within 5 standard errors
    ratio = (y / x).mean(dim=(1, 2))
    sem = ratio.std() / n ** 0.5
    assert abs(ratio.mean().item() - 1.0) < 5 * sem.item()


def test_drop_path_is_the_identity_in_eval_mode_and_at_zero():
    x = torch.randn(8, 4, 6)
    assert torch.equal(drop_path(x, 0.5, training=False), x)
    assert torch.equal(drop_path(x, 0.0, training=True), x)


def test_affine_drop_path_scales_then_drops():
    torch.manual_seed(1)
    layer = AffineDropPath(4, drop_prob=0.5, init_scale=0.1)
    x = torch.ones(2000, 4, 3)
    layer.eval()
    torch.testing.assert_close(layer(x), 0.1 * x)
    layer.train()
    y = layer(x)
    dropped = (y == 0).flatten(1).all(1)
    torch.testing.assert_close(y[~dropped], torch.full_like(y[~dropped], 0.1 / 0.5))
    frac = dropped.double().mean().item()
    assert 0.45 < frac < 0.55


# --------------------------------------------------------------- best epoch, eval_every

class StubEvaluation:
    """Replaces pytal.evaluation.evaluate: returns the given average mAPs in order and keeps
    the detections it was called with."""

    def __init__(self, values):
        self.values = list(values)
        self.detections = []

    def __call__(self, ground_truth, detections, *, subset, tiou_thresholds, **kwargs):
        value = self.values[len(self.detections)]
        self.detections.append(json.loads(json.dumps(detections)))
        tious = [float(t) for t in tiou_thresholds]
        return {"tiou_thresholds": tious, "mAP": [value] * len(tious), "average_mAP": value,
                "per_class_ap": {}}


def stub_evaluation(monkeypatch, values) -> StubEvaluation:
    """Install the stub wherever pytal's modules hold the real ``evaluate``."""
    stub, real = StubEvaluation(values), pytal.evaluation.evaluate
    for name, module in list(sys.modules.items()):
        if name.startswith("pytal") and getattr(module, "evaluate", None) is real:
            monkeypatch.setattr(module, "evaluate", stub)
    return stub


class SaveLog:
    """Wraps torch.save: records the epoch of each checkpoint and whether it is resumable."""

    def __init__(self, monkeypatch):
        self.saves = []
        real = torch.save

        def save(obj, f, *args, **kwargs):
            if isinstance(obj, dict) and "epoch" in obj:
                self.saves.append((int(obj["epoch"]), "optimizer" in obj))
            return real(obj, f, *args, **kwargs)

        monkeypatch.setattr(torch, "save", save)

    def epochs(self, resumable: bool) -> list[int]:
        return [e for e, r in self.saves if r == resumable]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("bookkeeping")
    return write_dataset(root / "data", num_videos=6, num_classes=3, feat_dim=16, seed=2,
                         duration_range=(12.0, 20.0), action_seconds=(1.0, 5.0))


def train(dataset, out, *extra):
    overrides = [f"{k}={v}" for k, v in dataset.config_overrides().items()]
    overrides += ["dataset.train_subset=training", "dataset.val_subset=validation",
                  "train.warmup_epochs=0", "train.batch_size=2", "train.lr=1e-3",
                  "train.model_ema=true", "train.ema_decay=0.5", *TINY, *extra]
    assert main(["train", "cltdr_gmg_small", "--output", str(out), "--no-progress",
                 "--override", *overrides]) == 0


def test_best_epoch_is_the_best_evaluation(dataset, tmp_path, monkeypatch):
    stub = stub_evaluation(monkeypatch, [0.2, 0.5, 0.3])
    saves = SaveLog(monkeypatch)
    out = tmp_path / "run"
    train(dataset, out, "train.epochs=3", "train.eval_every=1")
    assert len(stub.detections) == 3
    # the three evaluated models differ (otherwise the choice below would prove nothing)
    assert stub.detections[1] != stub.detections[0] and stub.detections[1] != stub.detections[2]

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epoch"] == 2 and metrics["average_mAP"] == 0.5
    assert json.loads((out / "detections.json").read_text()) == stub.detections[1]
    history = json.loads((out / "history.json").read_text())
    assert [(h["epoch"], h["average_mAP"]) for h in history] == [(1, 0.2), (2, 0.5), (3, 0.3)]
    assert load_checkpoint(out / "best.pt")["epoch"] == 2
    assert load_checkpoint(out / "last.pt")["epoch"] == 3
    assert saves.epochs(resumable=False) == [1, 2]          # best.pt rewritten on improvement

    # best.pt holds the weights that were evaluated at epoch 2: evaluating it again gives
    # epoch 2's detections
    again = stub_evaluation(monkeypatch, [0.0])
    assert main(["eval", "--ckpt", str(out / "best.pt")]) == 0
    assert _close_detections(again.detections[0], stub.detections[1])


def _close_detections(a, b, tol=1e-5) -> bool:
    if a["results"].keys() != b["results"].keys():
        return False
    for vid, entries in a["results"].items():
        other = b["results"][vid]
        if len(entries) != len(other):
            return False
        for x, y in zip(entries, other):
            if x["label"] != y["label"] or abs(x["score"] - y["score"]) > tol or \
                    max(abs(p - q) for p, q in zip(x["segment"], y["segment"])) > tol:
                return False
    return True


def test_eval_every_and_checkpoint_every(dataset, tmp_path, monkeypatch):
    stub = stub_evaluation(monkeypatch, [0.1, 0.3, 0.2])
    saves = SaveLog(monkeypatch)
    out = tmp_path / "run"
    train(dataset, out, "train.epochs=5", "train.eval_every=2", "train.checkpoint_every=2")
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [2, 4, 5]       # every 2nd epoch and the last
    assert len(stub.detections) == 3
    assert saves.epochs(resumable=True) == [2, 4, 5]        # last.pt: every 2nd and the last
    assert saves.epochs(resumable=False) == [2, 4]          # best.pt: 0.1 then 0.3
    assert json.loads((out / "metrics.json").read_text())["epoch"] == 4
    assert load_checkpoint(out / "last.pt")["epoch"] == 5


def test_eval_every_zero_evaluates_the_last_epoch_only(dataset, tmp_path, monkeypatch):
    stub = stub_evaluation(monkeypatch, [0.4])
    saves = SaveLog(monkeypatch)
    train(dataset, tmp_path / "run", "train.epochs=2", "train.eval_every=0")
    assert len(stub.detections) == 1
    assert saves.epochs(resumable=True) == [1, 2] and saves.epochs(resumable=False) == [2]
