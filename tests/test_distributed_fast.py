"""Two processes with gloo through the Trainer's distributed path (DistributedDataParallel,
DistributedSampler), one training step: both ranks end with identical weights, equal to one
process training on both ranks' videos at twice the batch size.

The model is a small stand-in whose loss is a mean over videos of a masked mean over steps,
so that the mean of two ranks' losses (DDP averages gradients) is the loss of the whole batch.
No crops (``max_seq_len`` above every video's length, no ``crop_ratio``), no noise."""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from pytal.config import load_config
from pytal.data.synthetic import write_dataset

BATCH = 2


class MeanSquareModel(nn.Module):
    """loss = mean over videos of (masked mean over steps of conv(feats)^2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv1d(channels, 4, 3, padding=1)
        self.out = nn.Conv1d(4, 1, 1)

    def forward(self, batch):
        y = self.out(torch.tanh(self.conv(batch.feats))) ** 2            # (B, 1, T)
        m = batch.masks.to(y.dtype)
        per_video = (y * m).sum(dim=(1, 2)) / m.sum(dim=(1, 2))
        # segments and labels take part too: the loss must use the right video's targets
        counts = torch.stack([s.new_tensor(float(len(s))) for s in batch.segments])
        return {"loss": (per_video * (1 + 0.1 * counts)).mean()}


def _config(ds, batch_size):
    overrides = [f"{k}={v}" for k, v in ds.config_overrides().items()]
    overrides += ["dataset.train_subset=training", "dataset.val_subset=validation",
                  "dataset.max_seq_len=1024", "dataset.crop_ratio=null", "train.epochs=1",
                  "train.warmup_epochs=0", "train.lr=1e-2", f"train.batch_size={batch_size}",
                  "train.clip_grad_l2norm=0", "train.model_ema=false"]
    return load_config("cltdr_gmg_small", overrides)


def _one_step(cfg, channels):
    from pytal.engine import Trainer

    trainer = Trainer(cfg, None, progress=False, model=MeanSquareModel(channels))
    assert len(trainer.loader) == 1
    trainer.train_one_epoch()
    return ({k: v.detach().clone() for k, v in trainer.model.state_dict().items()},
            {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters()})


def _rank(rank, world, port, cfg, channels, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from pytal.engine.distributed import close_distributed, init_distributed

    info, _ = init_distributed("cpu")
    assert info.distributed and info.rank == rank
    try:
        torch.save(_one_step(cfg, channels), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        close_distributed()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_equal_one_process_at_twice_the_batch(tmp_path, monkeypatch):
    ds = write_dataset(tmp_path / "data", num_videos=6, num_classes=3, feat_dim=8, seed=1,
                       duration_range=(12.0, 20.0), action_seconds=(1.0, 5.0))
    assert len(ds.subsets["training"]) == 2 * BATCH
    channels = 8
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    # fork: the children start in a fraction of a second instead of importing torch again
    mp.start_processes(_rank, args=(2, _free_port(), _config(ds, BATCH), channels, str(tmp_path)),
                       nprocs=2, join=True, start_method="fork")
    (w0, g0), (w1, g1) = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        w_single, g_single = _one_step(_config(ds, 2 * BATCH), channels)
    finally:
        torch.set_num_threads(threads)
    init = MeanSquareModel(channels).state_dict()
    for name in w_single:
        assert torch.equal(w0[name], w1[name]), f"ranks differ in {name}"
        torch.testing.assert_close(w0[name], w_single[name], rtol=1e-5, atol=1e-6,
                                   msg=lambda m: f"{name}: {m}")
        assert not torch.equal(w_single[name], init[name]), f"{name} did not move"
    for name in g_single:                         # DDP's averaged gradient = the full batch's
        torch.testing.assert_close(g0[name], g_single[name], rtol=1e-5, atol=1e-7,
                                   msg=lambda m: f"grad {name}: {m}")
