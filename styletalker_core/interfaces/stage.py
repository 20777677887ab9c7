"""Training stage: which modules train, on which data, with which losses.

The training engine (styletalker_core.train) owns everything generic: devices, precision,
distributed gradient averaging, optimizers and schedules, checkpoints and resume, logging,
progress, divergence checks. A stage plugin owns only the science of one stage.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol

import attrs
import torch
from torch import nn
from torch.utils.data import Dataset


class StageContext(Protocol):
    """What a stage gets from the engine in ``TrainingStage.setup``.

    The engine hands over :class:`styletalker_core.train.context.StageContext`, a class that
    satisfies this protocol (a test checks every member).
    ``recipe``, ``config``, ``registries`` and ``runtime`` are typed ``Any`` here because their
    classes live in layers above the interfaces: they are the run's ``Recipe``, the stage's
    ``StageConfig``, the ``Registries`` and the ``Runtime`` (device, rank, world size).
    ``produced`` maps a role to the checkpoint of the latest earlier stage that output it.
    """

    recipe: Any
    stage_name: str
    config: Any
    registries: Any
    runtime: Any
    run_dir: Path
    produced: dict[str, Path]

    @property
    def device(self) -> torch.device:
        """The device the stage trains on."""
        ...

    @property
    def stage_dir(self) -> Path:
        """``run_dir / stage_name``: where this stage writes its checkpoints."""
        ...

    def spec(self, role: str) -> Any:
        """The recipe's component spec for ``role`` (``[model.<role>]``)."""
        ...

    def has_component(self, role: str) -> bool:
        """True when the recipe defines ``role`` or an earlier stage produced it."""
        ...

    def component(self, role: str, **wired: Any) -> nn.Module:
        """The ``role`` component on the device, with the best weights available."""
        ...

    def dataset(self, split: str = "train", **wired: Any) -> Dataset:
        """The recipe's ``data.<split>`` dataset, with ``wired`` options added."""
        ...


@attrs.define
class Phase:
    """One backward pass within a step: ``loss(phase)`` is minimised with optimizer ``optimizer``.

    A GAN stage uses several phases per step (generator, discriminator, lazy regularisation);
    most stages use the single default phase ``main``.
    """

    name: str
    optimizer: str = "main"


@attrs.define
class OptimizerGroup:
    """Parameters stepped by one optimizer, with per-group learning-rate scale and betas."""

    params: list[nn.Parameter]
    lr_scale: float = 1.0
    betas: tuple[float, float] | None = None  # None: the stage config's betas


class TrainingStage(abc.ABC):
    """A stage of a recipe. Constructor keyword arguments are the stage's recipe options.

    Related options can form one typed table: a keyword annotated with an attrs class (or that
    class ``| Mapping[str, Any] | None``) is a nested table in the recipe, checked field by field
    (styletalker_core.recipe.options). ``renamed_options`` maps options a stage no longer takes
    to their new dotted paths: a recipe using one gets an error naming the new path, and recipes
    stored by runs and model files are rewritten.

    Life cycle: ``setup(context)`` once; then per step ``phases(step)``, and for each phase
    ``loss(phase, batch, step)`` (the engine does backward, gradient averaging across
    processes, clipping and the optimizer step); then ``after_step(step)``. At the end, on rank 0,
    ``finalize()`` once, then ``evaluate()``; ``outputs()`` and the numbers are saved as the stage's
    result.
    """

    renamed_options: ClassVar[Mapping[str, str]] = {}

    @abc.abstractmethod
    def setup(self, context: StageContext) -> None:
        """Build or load the modules this stage uses (``context.component(role)``) and its dataset."""

    @abc.abstractmethod
    def dataset(self) -> Dataset:
        """The training dataset; items follow the ClipDataset indexing contract (any index >= 0)."""

    @abc.abstractmethod
    def trainable(self) -> dict[str, nn.Module]:
        """Modules whose weights this stage changes, by role; saved in resume checkpoints."""

    @abc.abstractmethod
    def loss(self, phase: str, batch: dict[str, Any], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        """-> (scalar loss to minimise, named values to log). ``batch`` is already on the device."""

    def optimizer_groups(self) -> dict[str, OptimizerGroup]:
        """Optimizers by name. Default: one optimizer ``main`` over every trainable parameter."""
        params = [p for module in self.trainable().values() for p in module.parameters() if p.requires_grad]
        return {"main": OptimizerGroup(params)}

    def phases(self, step: int) -> list[Phase]:
        """Phases of ``step``, in order. Default: one phase ``main``."""
        return [Phase("main")]

    def after_step(self, step: int) -> None:  # noqa: B027 - an optional hook: the default does nothing
        """Called after every optimizer step (EMA updates, schedules of the stage's own)."""

    def extra_state(self) -> dict[str, Any]:
        """JSON-serialisable state beyond module weights, saved for resume."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - an optional hook
        """Restore what ``extra_state`` returned."""

    def buffers_to_save(self) -> dict[str, nn.Module]:
        """Extra modules saved for resume but not optimised (EMA copies). Default none."""
        return {}

    def finalize(self) -> None:  # noqa: B027 - an optional hook
        """Set what the stage's result holds beyond its trained weights (a generator's truncation
        centre, an encoder's out-of-domain threshold). Called once, on rank 0, after the last step and
        before ``evaluate()`` and saving; it may read only the trained modules and the data, so a
        resumed run saves the same file. Default nothing."""

    def evaluate(self) -> dict[str, float]:
        """Held-out numbers at the end of the stage (rank 0), stored in the stage checkpoint. Pure:
        it changes nothing that is saved (``finalize`` does that). Default none."""
        return {}

    def consumes(self) -> tuple[str, ...]:
        """Roles whose trained weights this stage reads (and keeps frozen or fine-tunes), known from
        its options before ``setup``: an earlier stage must produce each one, or the recipe must give
        its ``[model.<role>]`` weights; ``recipes validate`` checks the stages' order against it.
        Roles a stage may start from scratch (those it trains) are not listed. Default none."""
        return ()

    def produces(self) -> tuple[str, ...] | None:
        """The roles of ``outputs()``, known from the options before ``setup`` (later stages receive
        them through ``StageContext.produced``). None: not declared, so ``recipes validate`` cannot
        check what later stages consume."""
        return None

    @abc.abstractmethod
    def outputs(self) -> dict[str, nn.Module]:
        """Components this stage produces, by role, built through build_component (later stages and
        sampling load them from the stage checkpoint)."""
