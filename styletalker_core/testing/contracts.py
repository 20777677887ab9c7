"""The contract of each component kind: its checks, by kind, as :class:`Contract` objects."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from types import ModuleType

import attrs

from styletalker_core.errors import StyleTalkerError
from styletalker_core.testing.checks import (
    audio_encoder,
    backbones,
    dataset,
    generator,
    image_encoder,
    lipsync,
    logger,
    metric,
    motion,
)
from styletalker_core.testing.factory import ComponentFactory, NotApplicable
from styletalker_core.testing.integration import PARTS, check_trains_in_the_pipeline
from styletalker_core.testing.objectives import OBJECTIVES

Check = Callable[[ComponentFactory], None]


@attrs.frozen
class Contract:
    """One check of a kind's contract. ``contract(factory)`` runs it on the implementation the
    factory builds; a failure is an AssertionError naming the contract and the component, a
    check that does not apply raises NotApplicable (reported as skipped)."""

    kind: str
    name: str
    check: Check

    @property
    def description(self) -> str:
        """The check's docstring summary (its name in words when it has none)."""
        doc = inspect.getdoc(self.check) or self.name.replace("_", " ")
        return " ".join(doc.split("\n\n", 1)[0].split())

    def __call__(self, factory: ComponentFactory) -> None:
        if factory.kind != self.kind:
            raise StyleTalkerError(f"contract {self.kind}.{self.name} cannot check {factory}: it is a {self.kind} contract")
        try:
            self.check(factory)
        except AssertionError as error:
            raise AssertionError(f"contract {self.kind}.{self.name} failed: {error}") from error
        except NotApplicable as skipped:
            pytest = sys.modules.get("pytest")
            if pytest is None:  # unittest and others report a SkipTest as skipped
                raise
            pytest.skip(f"contract {self.kind}.{self.name}: {skipped}")

    def __str__(self) -> str:
        return f"{self.kind}.{self.name}"


def _checks(kind: str, module: ModuleType, prefix: str | None = None) -> tuple[Contract, ...]:
    """Every ``check_<prefix>_*`` function of ``module``, in source order, as contracts of ``kind``."""
    start = f"check_{prefix or kind}_"
    functions = [value for key, value in vars(module).items() if key.startswith(start) and inspect.isfunction(value)]
    functions.sort(key=lambda function: function.__code__.co_firstlineno)
    return tuple(Contract(kind, function.__name__[len(start):], function) for function in functions)


CONTRACTS: dict[str, tuple[Contract, ...]] = {
    "generator": _checks("generator", generator),
    "discriminator": _checks("discriminator", generator),
    "image_encoder": _checks("image_encoder", image_encoder),
    "audio_encoder": _checks("audio_encoder", audio_encoder),
    "lipsync_discriminator": _checks("lipsync_discriminator", lipsync),
    "lip_mapper": _checks("lip_mapper", lipsync),
    "motion_vae": _checks("motion_vae", motion),
    "prior": _checks("prior", motion),
    "flow": _checks("flow", motion),
    "prior_backbone": _checks("prior_backbone", backbones),
    "image_encoder_backbone": _checks("image_encoder_backbone", backbones),
    "dataset": _checks("dataset", dataset),
    "metric": _checks("metric", metric),
    "logger": _checks("logger", logger),
}


# Every trainable kind also trains two steps inside the training pipeline (parts inside a host).
for _kind in (*OBJECTIVES, *PARTS):
    CONTRACTS[_kind] = (*CONTRACTS.get(_kind, ()), Contract(_kind, "trains_in_the_pipeline", check_trains_in_the_pipeline))


def contracts_for(kind: str) -> tuple[Contract, ...]:
    """The contract of ``kind`` (empty for kinds without one: stages, converters)."""
    return CONTRACTS.get(kind, ())
