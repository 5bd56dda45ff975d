"""pytal.engine.checkpoint: what the weights-only loader reads (pytal's checkpoints, the public
CLTDR-GMG release's), what it refuses, and the conversion of a trusted file."""
from __future__ import annotations

import collections
import os

import numpy as np
import pytest
import torch

from pytal.engine.checkpoint import (CheckpointError, convert_checkpoint, load_checkpoint,
                                     plain_checkpoint)


class RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _release_checkpoint() -> dict:
    """What the CLTDR-GMG release's training script saves (ActionFormer's layout): state dicts
    with a DataParallel ``module.`` prefix, AdamW and a warm-up + cosine scheduler."""
    model = torch.nn.Sequential(torch.nn.Conv1d(4, 8, 3), torch.nn.LayerNorm(8))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    optimizer.step()
    scheduler.step()
    state = collections.OrderedDict((f"module.{k}", v) for k, v in model.state_dict().items())
    return {"epoch": 7, "state_dict": state, "state_dict_ema": collections.OrderedDict(state),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}


def test_release_format_loads_with_weights_only(tmp_path):
    ckpt = _release_checkpoint()
    torch.save(ckpt, tmp_path / "release.pth.tar")
    loaded = load_checkpoint(tmp_path / "release.pth.tar")
    assert loaded["epoch"] == 7 and loaded["scheduler"] == ckpt["scheduler"]
    for key, value in ckpt["state_dict"].items():
        assert torch.equal(loaded["state_dict"][key], value)
    assert loaded["optimizer"]["param_groups"] == ckpt["optimizer"]["param_groups"]


def test_code_in_a_checkpoint_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"model": {}, "x": RunsCode(str(marker))}, tmp_path / "hostile.pt")
    with pytest.raises(CheckpointError, match=r"hostile.pt: refused: loading it would import "
                       r"posix.system, which can run code .* pytal convert-checkpoint --trust"):
        load_checkpoint(tmp_path / "hostile.pt")
    assert not marker.exists()


@pytest.mark.parametrize("content,reason", [
    (b"", r"not a checkpoint \(EOFError: empty or truncated file\)"),
    (b"\x80\x02}q\x00.", r"not a checkpoint \("),           # a pickle, not torch's zip format
    (b"PK\x03\x04garbage", r"not a checkpoint \(RuntimeError: PytorchStreamReader"),
])
def test_unreadable_files_name_the_file(tmp_path, content, reason):
    (tmp_path / "bad.pt").write_bytes(content)
    with pytest.raises(CheckpointError, match=f"bad.pt: {reason}"):
        load_checkpoint(tmp_path / "bad.pt")


def test_a_tensor_alone_is_not_a_checkpoint(tmp_path):
    torch.save(torch.zeros(3), tmp_path / "t.pt")
    with pytest.raises(CheckpointError, match="expected a dict, got Tensor"):
        load_checkpoint(tmp_path / "t.pt")


def test_convert_needs_trust_then_gives_plain_data(tmp_path):
    legacy = {"rng": np.random.get_state(), "score": np.float32(0.5), "step": np.int64(3),
              "weights": torch.nn.Parameter(torch.ones(2)), "shape": (1, 2),
              "table": np.arange(6, dtype=np.uint32).reshape(2, 3)}
    torch.save(legacy, tmp_path / "legacy.pt")
    with pytest.raises(CheckpointError, match="numpy"):
        load_checkpoint(tmp_path / "legacy.pt")
    with pytest.raises(CheckpointError, match="pass --trust"):
        convert_checkpoint(tmp_path / "legacy.pt", tmp_path / "safe.pt")
    assert not (tmp_path / "safe.pt").exists()
    convert_checkpoint(tmp_path / "legacy.pt", tmp_path / "safe.pt", trust=True)
    safe = load_checkpoint(tmp_path / "safe.pt")
    assert safe["score"] == 0.5 and type(safe["score"]) is float and safe["step"] == 3
    assert type(safe["weights"]) is torch.Tensor and safe["shape"] == (1, 2)
    assert safe["table"].dtype == torch.int64 and safe["table"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert safe["rng"][0] == "MT19937" and safe["rng"][1].tolist() == legacy["rng"][1].tolist()


def test_plain_checkpoint_names_what_it_cannot_store():
    with pytest.raises(CheckpointError, match=r"\['config'\]\['hook'\] is a builtins.function"):
        plain_checkpoint({"config": {"hook": lambda: None}}, where="f.pt")
    with pytest.raises(CheckpointError, match=r"\['a'\] is a numpy array of Python objects"):
        plain_checkpoint({"a": np.array([object()])}, where="f.pt")
