"""Data-parallel training on PyTorch's engine: ``torchrun`` processes, ``DistributedDataParallel``.

Started by ``torchrun --nproc_per_node=N --no-python qk-lstm train …`` (or with ``--nnodes`` /
``--rdzv-endpoint`` across machines), every process is one *rank*. Each rank builds the same model
(same seed), the same length-bucketed batches (same generator) and trains on its share of the rows
of every batch; gradients are averaged by ``DistributedDataParallel`` (gloo on CPU, nccl on CUDA).
The loss of rank ``r`` is its task loss summed over its units (tokens, windows: ``Task.count``)
divided by the batch's total count, times the world size, so the averaged gradient is exactly the
one-process gradient of the whole batch: ``W`` ranks follow the same trajectory as one process (up
to float summation order). Every task trains this way (``Task.shard`` gives a rank its rows).
Only rank 0 writes metrics, checkpoints and the task's report (every rank returns rank 0's
report); every rank reads ``last.pt`` to resume.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .trainer import Trainer

__all__ = ["world", "setup", "barrier", "from_rank_zero", "DistributedTrainer"]


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


def from_rank_zero(value: Any) -> Any:
    """Rank 0's ``value`` (picklable) on every rank; ``value`` itself without a process group."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class DistributedTrainer(Trainer):
    """:class:`Trainer` whose rank trains on rows ``rank::world_size`` of every batch under DDP.

    ``model`` stays the plain module (its ``state_dict`` is what checkpoints hold, loadable
    without DDP); the forward pass of training goes through its ``DistributedDataParallel``
    wrapper. Epoch loss and metric are summed over ranks; only rank 0 writes files.
    """

    def __init__(self, model: nn.Module, *args: Any, **kwargs: Any) -> None:
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        if self.rank != 0:
            kwargs["progress"] = False
        super().__init__(model, *args, **kwargs)
        self.parallel = DistributedDataParallel(model)

    def train_batch(self, batch: Any, device: torch.device) -> tuple[float, float, int]:
        share = self.task.shard(batch, self.rank, self.world_size)
        units = self.task.count(batch)
        if share is not None:
            mean, count, metric = self.task.step(self.parallel, share, device)
            loss = mean * (count * self.world_size / units)  # Σ_share loss / units of the whole batch, × W
        else:  # fewer rows than ranks: the same DDP forward and backward (its collectives) on rank 0's rows, times 0
            mean, _, _ = self.task.step(self.parallel, self.task.shard(batch, 0, self.world_size), device)
            loss, metric, count = mean * 0.0, 0, 0
        self.optimizer.zero_grad()
        loss.backward()
        self.clip_and_step()
        return float(loss) * units / self.world_size, metric, count

    def reduce_epoch(self, loss: float, metric: float, total: int) -> tuple[float, float, int]:
        totals = torch.tensor([loss, metric, total], dtype=torch.float64)
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
