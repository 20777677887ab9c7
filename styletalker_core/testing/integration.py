"""The integration contract: a component of a trainable kind trains two steps inside the shipped
training pipeline (``train_recipe``) at its example size.

The component goes into a recipe as ``[model.<kind>]`` with its example options and a ``weights``
file holding its initial state; stage ``styletalker_contract`` (registered here, in a copy of the
registries) trains it with the kind's objective (:mod:`styletalker_core.testing.objectives`) for
two steps, writing a resume checkpoint after each. The check then asks: every logged value is
finite, every trainable parameter moved, and the stage's checkpoint and the run's model file
rebuild a component with the trained weights and outputs.

Kinds that are parts of another component (a prior's backbone) train inside a host: a registered
component whose option names that kind (see :func:`host_of`).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import attrs
import torch
from torch import nn
from torch.utils.data import Dataset

from styletalker_core.checkpoint import load_checkpoint, save_checkpoint
from styletalker_core.errors import RecipeError
from styletalker_core.interfaces.stage import StageContext, TrainingStage
from styletalker_core.recipe import structure
from styletalker_core.registry import ComponentSpec, Origin, Registries, build_component
from styletalker_core.registry.components import nested_kind, parameter_annotations
from styletalker_core.testing.factory import ComponentFactory, NotApplicable, fail, listed, require
from styletalker_core.testing.objectives import OBJECTIVES
from styletalker_core.train import train_recipe

STAGE = "styletalker_contract"
STEPS = 2
LR = 1e-3
ORIGIN = Origin("styletalker", "testing", "styletalker_core.testing.integration")


class _StepIndices(Dataset):
    """Items {"index": i}: the objective draws its inputs from the step, not from the data."""

    def __len__(self) -> int:
        return 64

    def __getitem__(self, index: int) -> dict[str, int]:
        return {"index": index}


class ContractStage(TrainingStage):
    """Trains the recipe's ``role`` component with the objective of its kind (the role names the kind)."""

    # The trained module of each run folder, for the check to compare with what was saved.
    trained: ClassVar[dict[str, nn.Module]] = {}

    def __init__(self, role: str) -> None:
        if role not in OBJECTIVES:
            raise ValueError(f"no contract objective for kind {role!r}; kinds: {', '.join(OBJECTIVES)}")
        self.role = role
        self.objective = OBJECTIVES[role]

    def setup(self, context: StageContext) -> None:
        self.module = context.component(self.role)
        ContractStage.trained[str(context.stage_dir.parent)] = self.module

    def dataset(self) -> Dataset:
        return _StepIndices()

    def trainable(self) -> dict[str, nn.Module]:
        return {self.role: self.module}

    def loss(self, phase: str, batch: dict[str, Any], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        loss = self.objective.loss(self.module, step)
        return loss, {"objective": float(loss.detach())}

    def outputs(self) -> dict[str, nn.Module]:
        return {self.role: self.module}


def with_contract_stage(registries: Registries) -> Registries:
    """A copy of ``registries`` (same entries) plus stage ``styletalker_contract``."""
    copy = Registries()
    for entry in registries.entries():
        copy[entry.kind].register(entry.name, entry.factory, entry.origin, entry.description, entry.example_options)
    copy["stage"].register(STAGE, ContractStage, ORIGIN)
    return copy


# Kinds that are parts of a component of another kind, which builds them from an option naming them.
PARTS: dict[str, str] = {"prior_backbone": "prior", "image_encoder_backbone": "image_encoder"}


@attrs.frozen
class Host:
    """The component the engine trains for a factory: the factory's own, or for a part (a backbone)
    a registered component of the host kind, built with its example options and the part named."""

    kind: str
    spec: ComponentSpec


def host_of(factory: ComponentFactory) -> Host:
    """The factory's own component for kinds with an objective; for a part kind, the first registered
    component of its host kind with an option that takes that kind (``backbone = "<name>"``). The
    host wires the part's sizes, so the part is built with those, not with its own example options."""
    if factory.kind in OBJECTIVES:
        return Host(factory.kind, factory.spec())
    host_kind = PARTS.get(factory.kind)
    if host_kind is None:
        fail(factory, f"no objective trains the {factory.kind} kind; kinds: {', '.join([*OBJECTIVES, *PARTS])}")
    for entry in factory.registries[host_kind]:
        for option, parameter in parameter_annotations(entry).items():
            if nested_kind(parameter.annotation) == factory.kind:
                return Host(host_kind, ComponentSpec(entry.name, {**entry.example_options, option: {"name": factory.name}}))
    raise NotApplicable(f"no registered {host_kind} takes a {factory.kind} option to train {factory} inside")


@contextmanager
def _quiet_progress() -> Iterator[None]:
    """No progress bars (the engine reads STYLETALKER_PROGRESS)."""
    before = os.environ.get("STYLETALKER_PROGRESS")
    os.environ["STYLETALKER_PROGRESS"] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("STYLETALKER_PROGRESS", None)
        else:
            os.environ["STYLETALKER_PROGRESS"] = before


def _recipe(host: Host, weights: Path, run_dir: Path) -> dict[str, Any]:
    return {
        "name": "styletalker_contract",
        "seed": 0,
        "output_dir": str(run_dir),
        "runtime": {"device": "cpu"},
        "model": {host.kind: {**host.spec.to_table(), "weights": str(weights)}},
        "stages": {"fit": {"name": STAGE, "role": host.kind, "steps": STEPS, "batch_size": 2, "lr": LR,
                           "checkpoint_every": 1, "log_every": 1}},
    }


def _logged(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if record.get("stage") == "fit"]


def _same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    """Keys whose tensors differ (or exist on one side only)."""
    return sorted(key for key in set(a) | set(b) if key not in a or key not in b or not torch.equal(a[key], b[key]))


def check_trains_in_the_pipeline(factory: ComponentFactory) -> None:
    """Two steps of ``train_recipe`` at example size: finite losses, every trainable parameter moves,
    and the stage checkpoint and the model file give back the trained weights and outputs."""
    host = host_of(factory)
    objective = OBJECTIVES[host.kind]
    registries = with_contract_stage(factory.registries)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        torch.manual_seed(0)
        initial = build_component(registries, host.kind, host.spec)
        if not any(parameter.requires_grad for parameter in initial.parameters()):
            raise NotApplicable(f"{factory} has no trainable parameters")
        weights = save_checkpoint(root / "initial.safetensors", {host.kind: initial})
        run_dir = root / "run"
        try:
            recipe = structure(_recipe(host, weights, run_dir), registries, source=f"a recipe with {factory}")
        except RecipeError as error:
            fail(factory, f"its options do not validate in a recipe: {error}")
        with _quiet_progress():
            try:
                result = train_recipe(recipe, registries)
            finally:
                trained = ContractStage.trained.pop(str(run_dir), None)
        if trained is None:
            fail(factory, "the contract stage never ran")
        records = _logged(run_dir)
        require([record["step"] for record in records] == list(range(1, STEPS + 1)), factory,
                f"logged steps {[record['step'] for record in records]}, expected 1..{STEPS}")
        for record in records:
            bad = {k: v for k, v in record.items() if isinstance(v, (int, float)) and not math.isfinite(v)}
            require(not bad, factory, f"step {record['step']}: non-finite {bad}")
        before = dict(initial.named_parameters())
        unchanged = [name for name, parameter in trained.named_parameters()
                     if parameter.requires_grad and torch.equal(parameter.detach().cpu(), before[name].detach())]
        require(not unchanged, factory, f"{STEPS} steps of Adam (lr {LR}) left {listed(unchanged)} unchanged: no "
                                        "gradient reaches them through the kind's interface")
        state = {key: value.detach().cpu() for key, value in trained.state_dict().items()}
        from_stage: Any = load_checkpoint(result.stages[0].checkpoint, registries, roles=[host.kind])[host.kind]
        from_model: Any = load_checkpoint(result.model, registries, roles=[host.kind])[host.kind]
        for where, loaded in (("the stage checkpoint", from_stage), ("the model file", from_model)):
            require(type(loaded) is type(trained), factory, f"{where} rebuilt a {type(loaded).__qualname__}")
            differing = _same_tensors(state, loaded.state_dict())
            require(not differing, factory, f"{where} holds other values for {listed(differing)}")
            require(loaded.component_spec.name == host.spec.name, factory, f"{where} records another build spec")
            trained.eval()
            loaded.eval()
            with torch.no_grad():
                require(torch.equal(objective.probe(trained), objective.probe(loaded)), factory,
                        f"the component rebuilt from {where} computes other outputs than the trained one")
