"""Multi-process training through ``torch.distributed``: process-group set-up from torchrun's
environment, sharding of evaluation items, and the collectives the trainer uses.

Launch ``torchrun --nproc_per_node=N -m pytal train CONFIG --output RUN_DIR``: torchrun sets
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in every process; :func:`init_distributed` reads
them and starts a process group (``gloo`` on the CPU, ``nccl`` on CUDA, where each process takes
the GPU ``cuda:LOCAL_RANK``). Without those variables nothing is started and every helper here
behaves as for a single process (rank 0 of 1), so the single-process code path is unchanged.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence, TypeVar

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "init_distributed", "close_distributed", "dist_info", "is_main_process",
           "barrier", "all_gather_objects", "broadcast_object", "shard_indices",
           "merge_detections", "backend_for"]

T = TypeVar("T")
ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistInfo:
    """This process's place: ``rank`` of ``world_size`` processes, ``local_rank`` on its host."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def backend_for(device: torch.device | str) -> str:
    """The process-group backend for a device type: ``nccl`` for CUDA, ``gloo`` otherwise."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def _env_info() -> DistInfo | None:
    present = [k for k in ENV_KEYS if k in os.environ]
    if not present:
        return None
    if len(present) != len(ENV_KEYS):
        missing = sorted(set(ENV_KEYS) - set(present))
        raise ValueError(f"distributed launch: {', '.join(missing)} not set (torchrun sets "
                         f"{', '.join(ENV_KEYS)}; set all of them or none)")
    try:
        info = DistInfo(*(int(os.environ[k]) for k in ENV_KEYS))
    except ValueError:
        raise ValueError("distributed launch: RANK, WORLD_SIZE and LOCAL_RANK must be integers, "
                         f"got {[os.environ[k] for k in ENV_KEYS]}") from None
    if not 0 <= info.rank < info.world_size:
        raise ValueError(f"distributed launch: RANK must be in [0, WORLD_SIZE), got "
                         f"RANK={info.rank} WORLD_SIZE={info.world_size}")
    return info


def init_distributed(device: torch.device | str = "cpu") -> tuple[DistInfo, torch.device]:
    """Start the process group when launched by torchrun; returns ``(info, device)``.

    ``device`` is the requested device; on CUDA each process takes ``cuda:LOCAL_RANK`` (an
    explicit index in ``device`` is then an error, since processes must not share a GPU). Without
    torchrun's variables (or with ``WORLD_SIZE=1``) no group is started and ``device`` is
    returned unchanged."""
    device = torch.device(device)
    info = _env_info()
    if info is None or info.world_size == 1:
        return DistInfo(), device
    if device.type == "cuda":
        if device.index is not None:
            raise ValueError(f"--device {device}: under torchrun give 'cuda' without an index; "
                             "process LOCAL_RANK takes cuda:LOCAL_RANK")
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend_for(device), rank=info.rank, world_size=info.world_size)
    return info, device


def close_distributed() -> None:
    """Destroy the process group started by :func:`init_distributed` (no-op without one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def dist_info() -> DistInfo:
    """The current process group's rank and size (rank 0 of 1 without one)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(),
                        int(os.environ.get("LOCAL_RANK", 0)))
    return DistInfo()


def is_main_process() -> bool:
    """True on rank 0, and always without a process group."""
    return dist_info().is_main


def barrier() -> None:
    """Wait for every rank (no-op for a single process)."""
    if dist_info().distributed:
        dist.barrier()


def all_gather_objects(obj: T) -> list[T]:
    """Every rank's ``obj`` (picklable), in rank order, on every rank; ``[obj]`` alone."""
    info = dist_info()
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: T, src: int = 0) -> T:
    """Rank ``src``'s ``obj`` on every rank (``obj`` of other ranks is ignored)."""
    if not dist_info().distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def shard_indices(count: int, rank: int, world_size: int) -> list[int]:
    """The items ``rank`` handles out of ``count``: every ``world_size``-th one from ``rank``.
    Shards are disjoint, cover ``range(count)`` and differ in size by at most one (some may be
    empty); no item is duplicated, so gathered results need no de-duplication."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"shard_indices: need 0 <= rank < world_size, got rank={rank} "
                         f"world_size={world_size}")
    return list(range(rank, count, world_size))


def merge_detections(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One detections JSON dict (see :func:`pytal.engine.detections_json`) from the dicts of
    disjoint shards, results ordered by video id as in the single-process output when the
    shards came from :func:`shard_indices` (interleaved back into the dataset order)."""
    if not parts:
        raise ValueError("merge_detections: no detections to merge")
    results: dict[str, Any] = {}
    shards = [list(p["results"].items()) for p in parts]
    for i in range(max(len(s) for s in shards)):
        for shard in shards:                    # item j of shard r was dataset item j*W + r
            if i < len(shard):
                vid, entries = shard[i]
                if vid in results:
                    raise ValueError(f"merge_detections: video {vid!r} in two shards")
                results[vid] = entries
    merged = {**parts[0], "results": results}
    if any("proposals" in p for p in parts):
        merged["proposals"] = {k: v for p in parts for k, v in p.get("proposals", {}).items()}
    return merged
