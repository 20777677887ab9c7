"""Which dataset indices make up each training step: a stateless function of (seed, step).

The global stream of samples is the concatenation of epochs; epoch e is a permutation of
range(N) drawn from (seed, e), and sample k of epoch e is passed to the dataset as index
``e * N + perm[k]`` (datasets select clip ``index % N`` and seed the window with the
index, so each epoch sees fresh windows). Step s takes global samples
``[s * B, (s + 1) * B)``; with W processes, rank r takes its contiguous share of them.

Because the schedule depends only on (seed, step), resuming at step s needs no sampler
state, and W processes together see exactly the batches one process would.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

KEPT_ORDERS = 4  # epoch orders a sampler keeps: consecutive steps read the same one or two


class StepBatches(Sampler[list[int]]):
    """Yields, for steps ``start_step .. total_steps - 1``, this rank's list of dataset indices."""

    def __init__(
        self,
        dataset_size: int,
        global_batch: int,
        seed: int,
        start_step: int,
        total_steps: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if dataset_size <= 0:
            raise ValueError("the training dataset is empty")
        if global_batch % world_size != 0:
            raise ValueError(f"batch_size {global_batch} is not divisible by the {world_size} processes")
        self.size = dataset_size
        self.global_batch = global_batch
        self.seed = seed
        self.start_step = start_step
        self.total_steps = total_steps
        self.rank = rank
        self.world_size = world_size
        self._orders: dict[int, torch.Tensor] = {}  # epoch -> dataset order, oldest first

    def _permutation(self, epoch: int) -> torch.Tensor:
        """The dataset order of ``epoch`` (the last :data:`KEPT_ORDERS` are kept by this sampler)."""
        order = self._orders.get(epoch)
        if order is None:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = self._orders[epoch] = torch.randperm(self.size, generator=generator)
            if len(self._orders) > KEPT_ORDERS:
                del self._orders[next(iter(self._orders))]  # the oldest epoch
        return order

    def global_indices(self, step: int) -> list[int]:
        """All ``global_batch`` dataset indices of ``step`` (every rank's share, in rank order)."""
        indices = []
        for sample in range(step * self.global_batch, (step + 1) * self.global_batch):
            epoch, position = divmod(sample, self.size)
            indices.append(epoch * self.size + int(self._permutation(epoch)[position]))
        return indices

    def indices(self, step: int) -> list[int]:
        """This rank's share of ``step``."""
        share = self.global_batch // self.world_size
        return self.global_indices(step)[self.rank * share:(self.rank + 1) * share]

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start_step, self.total_steps):
            yield self.indices(step)

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step)
