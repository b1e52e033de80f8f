"""Data-parallel training on PyTorch's engine: ``torchrun`` processes, ``DistributedDataParallel``.

Started by ``torchrun --nproc_per_node=N --no-python qk-lstm train …`` (or with ``--nnodes`` /
``--rdzv-endpoint`` across machines), every process is one *rank*. Each rank builds the same model
(same seed), the same length-bucketed batches (same generator) and trains on its share of the rows
of every batch; gradients are averaged by ``DistributedDataParallel`` (gloo on CPU, nccl on CUDA).
The loss of rank ``r`` is its NLL summed over its tokens divided by the batch's total token count,
times the world size, so the averaged gradient is exactly the one-process gradient of the whole
batch: ``W`` ranks follow the same trajectory as one process (up to float summation order).
Only rank 0 writes metrics and checkpoints; every rank reads ``last.pt`` to resume.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..data.corpus import PAD_TAG, Batch
from .trainer import Trainer, _batch_stats

__all__ = ["world", "setup", "barrier", "DistributedTrainer"]


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process: from torchrun's environment, ``(0, 1)`` without it."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def setup(device: str = "cpu") -> bool:
    """Join the process group torchrun describes (gloo on CPU, nccl on CUDA); False when not distributed."""
    rank, size = world()
    if size <= 1:
        return False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    if device.startswith("cuda"):
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return True


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


class DistributedTrainer(Trainer):
    """:class:`Trainer` whose rank trains on rows ``rank::world_size`` of every batch under DDP.

    ``model`` stays the plain module (its ``state_dict`` is what checkpoints hold, loadable
    without DDP); the forward pass of training goes through its ``DistributedDataParallel``
    wrapper. Epoch loss and accuracy are summed over ranks; only rank 0 writes files.
    """

    def __init__(self, model: nn.Module, *args: Any, **kwargs: Any) -> None:
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        if self.rank != 0:
            kwargs["progress"] = False
        super().__init__(model, *args, **kwargs)
        self.parallel = DistributedDataParallel(model)

    def train_batch(self, batch: Batch, device: torch.device) -> tuple[float, int, int]:
        rows = slice(self.rank, None, self.world_size)
        share = Batch(batch.words[rows], batch.tags[rows])
        tokens = int((batch.tags != PAD_TAG).sum())
        if share.words.size(0):
            mean, correct, count = _batch_stats(self.parallel(share.words.to(device)), share)
            loss = mean * (count * self.world_size / tokens)  # Σ_share NLL / tokens of the whole batch, × W
        else:  # fewer rows than ranks: take part in the gradient all-reduce with zeros
            loss, correct, count = sum(p.sum() for p in self.parallel.parameters()) * 0.0, 0, 0
        self.optimizer.zero_grad()
        loss.backward()
        self.clip_and_step()
        return float(loss) * tokens / self.world_size, correct, count

    def reduce_epoch(self, loss: float, correct: float, total: int) -> tuple[float, float, int]:
        totals = torch.tensor([loss, correct, total], dtype=torch.float64)
        dist.all_reduce(totals)
        return float(totals[0]), float(totals[1]), int(totals[2])

    def _save_epoch(self, record: dict[str, float]) -> None:
        if self.rank == 0:
            super()._save_epoch(record)
        else:
            self.update_best(record)

    def write_metrics(self, **extra: Any) -> None:
        if self.rank == 0:
            super().write_metrics(**extra)
