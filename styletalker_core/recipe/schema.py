"""The recipe schema: attrs classes with types, defaults and validators.

A recipe file is TOML. Component tables (``[model.generator]``, ``[data.train]``, the
entries of ``evaluate.metrics`` and ``loggers``) are flat: ``name`` picks the plugin and the
other keys are its options (see :class:`ComponentSpec`). Stage tables are flat too: the
engine's fields below, plus options of the stage plugin.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs
from attrs import validators as v

from styletalker_core.registry.components import ComponentSpec

Precision = Literal["fp32", "bf16", "fp16"]
LrSchedule = Literal["constant", "cosine", "warmup_cosine"]


def _device(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isascii() and value[5:].isdigit()):
        return
    raise ValueError(f"expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {value!r}")


@attrs.define
class RuntimeConfig:
    """Where and how tensors are computed."""

    device: str = attrs.field(default="auto", validator=_device)
    precision: Precision = "fp32"
    num_threads: int = attrs.field(default=0, validator=v.ge(0))  # 0: torch's default
    deterministic: bool = False
    channels_last: bool = False


@attrs.define
class DataConfig:
    """Datasets (``dataset`` components) and loader settings."""

    train: ComponentSpec | None = None
    val: ComponentSpec | None = None
    num_workers: int = attrs.field(default=0, validator=v.ge(0))


@attrs.define
class StageConfig:
    """One training stage. ``name`` is a ``stage`` plugin; ``options`` go to its constructor."""

    name: str
    steps: int = attrs.field(validator=v.gt(0))
    enabled: bool = True
    batch_size: int = attrs.field(default=8, validator=v.gt(0))
    lr: float = attrs.field(default=1e-3, validator=v.gt(0))
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = attrs.field(default=0.0, validator=v.ge(0))
    lr_schedule: LrSchedule = "constant"
    warmup_steps: int = attrs.field(default=0, validator=v.ge(0))
    grad_clip: float = attrs.field(default=0.0, validator=v.ge(0))  # 0: no clipping
    checkpoint_every: int = attrs.field(default=500, validator=v.gt(0))
    log_every: int = attrs.field(default=10, validator=v.gt(0))
    options: dict[str, Any] = attrs.field(factory=dict)


@attrs.define
class SampleConfig:
    """Defaults of ``styletalker sample``; the command line can override each."""

    temperature: float = attrs.field(default=1.0, validator=v.ge(0))
    pose_scale: float = attrs.field(default=1.0, validator=v.ge(0))
    batch_size: int = attrs.field(default=16, validator=v.gt(0))
    chunk_frames: int = attrs.field(default=250, validator=v.gt(0))
    motion_fit: Literal["loop", "trim"] = "loop"
    align: bool = True


@attrs.define
class EvaluateConfig:
    """Metric components run by ``styletalker evaluate`` and ``ablate``."""

    metrics: list[ComponentSpec] = attrs.field(factory=list)
    clips: int = attrs.field(default=16, validator=v.gt(0))


@attrs.define
class Recipe:
    """One experiment: which components, which data, which stages."""

    name: str
    description: str = ""
    seed: int = 0
    output_dir: str = ""  # empty: runs/<name>
    runtime: RuntimeConfig = attrs.field(factory=RuntimeConfig)
    data: DataConfig = attrs.field(factory=DataConfig)
    model: dict[str, ComponentSpec] = attrs.field(factory=dict)
    stages: dict[str, StageConfig] = attrs.field(factory=dict)
    sample: SampleConfig = attrs.field(factory=SampleConfig)
    evaluate: EvaluateConfig = attrs.field(factory=EvaluateConfig)
    loggers: list[ComponentSpec] = attrs.field(factory=list)
    # Free-form provenance written by tools (training time, measured numbers); not read by engines.
    notes: dict[str, Any] = attrs.field(factory=dict)

    def run_dir(self) -> str:
        return self.output_dir or f"runs/{self.name}"


COMPONENT_FIELDS = {"data.train": "dataset", "data.val": "dataset"}
COMPONENT_LIST_FIELDS = {"evaluate.metrics": "metric", "loggers": "logger"}
STAGE_ENGINE_FIELDS = tuple(a.name for a in attrs.fields(StageConfig) if a.name != "options")
