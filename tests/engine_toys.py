"""A tiny real stage, dataset and model for testing the training engine (also loadable as a plugin).

The model is a linear read-out from 2x2 images to one factor; the data are noisy samples of
a fixed linear function, deterministic by index. Module-level switches let tests interrupt
or poison a run at a chosen step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from styletalker_core.interfaces import ClipDataset, FactorOracle
from styletalker_core.interfaces.stage import TrainingStage
from styletalker_core.plugin_host import hookimpl

INTERRUPT_AT: int | None = None  # raise KeyboardInterrupt when this step starts
TRUE_WEIGHTS = torch.linspace(-1.0, 1.0, 12)


class ToyData(ClipDataset):
    """Items {"images": [3, 2, 2], "target": []}; noise seeded by the index."""

    window_frames = 1

    def __init__(self, size: int = 64, noise: float = 0.1) -> None:
        self.size = size
        self.noise = noise

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, Any]:
        generator = torch.Generator().manual_seed(index)
        images = torch.randn(3, 2, 2, generator=torch.Generator().manual_seed(index % self.size))
        target = images.flatten() @ TRUE_WEIGHTS + self.noise * torch.randn((), generator=generator)
        return {"images": images, "target": target}


class ToyOracle(FactorOracle):
    """Linear read-out of one factor from tiny images."""

    def __init__(self, resolution: int = 2, hidden: int = 0) -> None:
        super().__init__()
        self.resolution = resolution
        self.factors = {"target": 1}
        inputs = 3 * resolution * resolution
        self.net = nn.Linear(inputs, 1) if hidden == 0 else nn.Sequential(nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"target": self.net(images.flatten(1)).squeeze(-1)}


class ToyFitStage(TrainingStage):
    """Fits the toy oracle with mean squared error; ``noise`` jitters predictions from the global RNG."""

    def __init__(self, nan_at: int = -1, noise: float = 0.0) -> None:
        self.nan_at = nan_at
        self.noise = noise

    def setup(self, context: Any) -> None:
        self.context = context
        self.model = context.component("oracle")
        self.data = context.dataset("train")

    def dataset(self) -> ClipDataset:
        return self.data

    def trainable(self) -> dict[str, nn.Module]:
        return {"oracle": self.model}

    def loss(self, phase: str, batch: dict[str, Any], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        if INTERRUPT_AT is not None and step == INTERRUPT_AT:
            raise KeyboardInterrupt
        prediction = self.model(batch["images"])["target"]
        if self.noise:
            prediction = prediction + self.noise * torch.randn_like(prediction)
        loss = ((prediction - batch["target"]) ** 2).mean()
        if step == self.nan_at:
            loss = loss * float("nan")
        return loss, {"mse": float(loss.detach())}

    def evaluate(self) -> dict[str, float]:
        with torch.no_grad():
            error = (self.model.net.weight.flatten() - TRUE_WEIGHTS).abs().max() if isinstance(self.model.net, nn.Linear) else torch.tensor(0.0)
        return {"max_weight_error": float(error)}

    def outputs(self) -> dict[str, nn.Module]:
        return {"oracle": self.model}


def register_toys(registrar: Any) -> None:
    registrar.register("dataset", "toy_data", ToyData, example_options={"size": 8})
    registrar.register("oracle", "toy_oracle", ToyOracle, example_options={})
    registrar.register("stage", "toy_fit", ToyFitStage)


@hookimpl
def styletalker_register(registrar: Any) -> None:
    register_toys(registrar)


def engine_registries() -> Any:
    """The built-in registries plus the toy components above (what the engine tests train with)."""
    from styletalker_core.plugin_host import build_registries
    from styletalker_core.registry import Origin, Registrar

    registries = build_registries()
    register_toys(Registrar(registries, Origin("engine-toys", "0", "engine_toys")))
    return registries
