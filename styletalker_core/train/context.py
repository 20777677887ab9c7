"""What a training stage gets from the engine: recipe, device, process group and components."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn
from torch.utils.data import Dataset

from styletalker_core.checkpoint import load_checkpoint, load_component_weights
from styletalker_core.errors import StyleTalkerError
from styletalker_core.recipe.schema import Recipe, StageConfig
from styletalker_core.registry.components import ComponentSpec, build_component
from styletalker_core.registry.registry import Registries
from styletalker_core.train.runtime import Runtime

LOG = logging.getLogger(__name__)


def build_recipe_component(registries: Registries, recipe_name: str, role: str, spec: ComponentSpec, **wired: Any) -> nn.Module:
    """Build ``[model.<role>]`` and give it its starting weights.

    First the component's own published weights (``load_pretrained``, for example a wav2vec2
    checkpoint named in its options), then the recipe's ``weights`` file, which takes precedence.
    """
    module = build_component(registries, spec.kind or role, spec, recipe_path=f"model.{role}", **wired)
    load_pretrained = getattr(module, "load_pretrained", None)
    if callable(load_pretrained):
        load_pretrained()
    if spec.weights:
        weights = Path(spec.weights)
        if not weights.is_file():
            raise StyleTalkerError(
                f"recipe {recipe_name}: model.{role}.weights = {spec.weights!r} does not exist; "
                "train or convert it first, or remove the weights entry"
            )
        load_component_weights(module, weights, role=None)
    return module


@attrs.define
class StageContext:
    """Handed to ``TrainingStage.setup``: the engine's implementation of the
    :class:`styletalker_core.interfaces.stage.StageContext` protocol.

    ``produced`` maps a role to the checkpoint of the latest earlier stage that output it, so
    a stage picks up what the previous ones trained.
    """

    recipe: Recipe
    stage_name: str
    config: StageConfig
    registries: Registries
    runtime: Runtime
    run_dir: Path
    produced: dict[str, Path] = attrs.Factory(dict)

    @property
    def device(self) -> torch.device:
        return self.runtime.device

    @property
    def stage_dir(self) -> Path:
        return self.run_dir / self.stage_name

    def spec(self, role: str) -> ComponentSpec:
        """The recipe's component for ``role`` (``[model.<role>]``)."""
        try:
            return self.recipe.model[role]
        except KeyError:
            raise StyleTalkerError(
                f"recipe {self.recipe.name}: stage {self.stage_name!r} needs [model.{role}], which the recipe "
                "does not define; add it"
            ) from None

    def has_component(self, role: str) -> bool:
        return role in self.recipe.model or role in self.produced

    def component(self, role: str, **wired: Any) -> nn.Module:
        """The ``role`` component on the device, with the best weights available.

        From the latest earlier stage that produced it; otherwise built from the recipe and
        loaded from its ``weights`` file when one is given; otherwise freshly initialised.
        ``wired`` options (derived from other components) apply only when building from the recipe.
        """
        if role in self.produced:
            module = load_checkpoint(self.produced[role], self.registries, roles=[role])[role]
            LOG.info("%s: %s from %s", self.stage_name, role, self.produced[role])
            return module.to(self.device)
        return build_recipe_component(self.registries, self.recipe.name, role, self.spec(role), **wired).to(self.device)

    def dataset(self, split: str = "train", **wired: Any) -> Dataset:
        """The recipe's ``data.<split>`` dataset, with ``wired`` options added."""
        spec = getattr(self.recipe.data, split)
        if spec is None:
            raise StyleTalkerError(f"recipe {self.recipe.name}: stage {self.stage_name!r} needs [data.{split}]; add it")
        return build_component(self.registries, "dataset", spec, recipe_path=f"data.{split}", **wired)
