"""Contract of the ``metric`` kind: a finite value for each key declared in ``higher_is_better`` on
a small item holding everything a metric can ask for (``requires`` names only EvalItem fields, or
``labels.NAME``); where a best score is defined by the metric's meaning (a video compared with
itself), identical inputs get it.

The item: 40 frames (1.6 s) of a real face photo (scikit-image's astronaut, 128 px) turning a few
degrees, a synthetic voiced signal, ground-truth labels shaped like the synthetic domain's, a
motion source and references. Metrics that score with a trained component take its checkpoint
path in an option named ``checkpoint`` (kind given by their ``role`` option) or named after the
component's kind (``oracle``); the check saves an untrained component of that kind, built from
the first registered implementation's example options, and passes its path.
"""

from __future__ import annotations

import functools
import math
import tempfile
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from styletalker_core.checkpoint import save_checkpoint
from styletalker_core.data.synthetic import IDENTITY_DIM
from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces.metric import EvalItem, Metric
from styletalker_core.registry import ComponentSpec, build_component
from styletalker_core.testing.factory import ComponentFactory, NotApplicable, require

FRAMES = 40
CHECKPOINT_OPTIONS = ("checkpoint", "oracle")
# Values whose best score is known when a video is compared with itself.
# None: better than for different inputs, with no fixed value (PSNR is capped by an option; the
# identity reference is one frame of a moving video, so CSIM compares it with turned faces too).
BEST_WHEN_IDENTICAL: dict[str, float | None] = {
    "psnr": None, "ssim": 1.0, "lmd": 0.0, "lmd_face": 0.0, "csim": None, "csim_distance": None,
}


def _face_video(angles: np.ndarray) -> torch.Tensor:
    """[t, 3, 128, 128] in [-1, 1]: the astronaut's face rotated by ``angles`` degrees."""
    try:
        import skimage.data
        from skimage.transform import rotate
    except ImportError as error:
        raise StyleTalkerError(
            "the metric contract needs scikit-image for its face video; install it (pip install 'styletalker[test]')"
        ) from error
    face = skimage.data.astronaut()[20:276, 100:356][::2, ::2]
    frames = [rotate(face, angle, mode="edge", preserve_range=True).astype(np.uint8) for angle in angles]
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _labels(seed: int) -> dict[str, torch.Tensor]:
    """Per-frame ground truth shaped like the synthetic domain's labels."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(FRAMES, dtype=torch.float32)
    eye_open = torch.ones(FRAMES)
    eye_open[12:15] = 0.05
    return {
        "identity": torch.rand(IDENTITY_DIM, generator=generator).expand(FRAMES, -1).clone(),
        "pose": torch.stack([3 * torch.sin(t / 5), 2 * torch.cos(t / 7), torch.sin(t / 3)], -1),
        "eye_open": eye_open,
        "mouth_open": 0.5 + 0.5 * torch.sin(t / 2),
        "mouth_width": 0.5 + 0.2 * torch.cos(t / 3),
        "phoneme": torch.zeros(FRAMES),
    }


@functools.cache
def evaluation_items() -> dict[str, EvalItem]:
    """'different': references differ a little from the frames; 'identical': frames are their own
    reference. Built once per process (rotating the photo takes a moment); do not modify them."""
    angles = 3.0 * np.sin(np.arange(FRAMES) / 4.0)
    frames = _face_video(angles)
    seconds = np.arange(FRAMES * 640) / 16000
    voice = np.sin(2 * np.pi * 140 * seconds) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * seconds))
    audio = torch.from_numpy(0.3 * voice).float()
    noise = 0.03 * torch.randn(frames.shape, generator=torch.Generator().manual_seed(0))
    common: dict[str, Any] = dict(audio=audio, motion_frames=frames.flip(0), labels=_labels(1), motion_labels=_labels(2))
    return {
        "different": EvalItem(frames=frames, reference_frames=_face_video(angles + 1.0) + noise,
                              reference_image=frames[5] + noise[0], **common),
        "identical": EvalItem(frames=frames, reference_frames=frames.clone(), reference_image=frames[0].clone(), **common),
    }


def _checkpoint_options(factory: ComponentFactory, folder: Path) -> dict[str, str]:
    """Paths to untrained checkpoints for the metric's checkpoint options (see the module notes)."""
    parameters = factory.entry.signature().parameters
    options = {}
    for name in CHECKPOINT_OPTIONS:
        if name not in parameters or factory.options.get(name):
            continue
        role = parameters["role"].default if "role" in parameters else name
        registries = factory.registries
        implementation = next(iter(registries[role]))
        torch.manual_seed(0)
        module = build_component(registries, role, ComponentSpec(implementation.name, dict(implementation.example_options)))
        path = folder / f"{factory.name}_{name}.safetensors"
        save_checkpoint(path, {role: module})
        options[name] = str(path)
    return options


def build_metric(factory: ComponentFactory, folder: Path) -> Metric:
    """The metric, with untrained checkpoints written under ``folder`` for its checkpoint options."""
    return factory.with_options(_checkpoint_options(factory, folder))()


def has_defined_best(factory: ComponentFactory) -> bool:
    """Whether the metric returns a key whose best value for identical inputs is known (built with
    its options only: checkpoints load on first use, not here)."""
    return any(key in BEST_WHEN_IDENTICAL for key in factory().higher_is_better)


def check_metric_declares_what_it_needs_and_returns(factory: ComponentFactory) -> None:
    fields = {field.name for field in attrs.fields(EvalItem)}
    with tempfile.TemporaryDirectory() as folder:
        metric = build_metric(factory, Path(folder))
    require(isinstance(metric, Metric), factory, f"built a {type(metric).__qualname__}, not a Metric")
    require(metric.higher_is_better, factory, "higher_is_better declares no value")
    require(all(isinstance(v, bool) for v in metric.higher_is_better.values()), factory,
            "higher_is_better must map each key to true or false")
    for requirement in metric.requires:
        field, _, label = requirement.partition(".")
        require(field in fields, factory, f"requires unknown EvalItem field {field!r}; fields: {', '.join(sorted(fields))}")
        require(not label or field in ("labels", "motion_labels"), factory,
                f"requires {requirement!r}: only labels.NAME and motion_labels.NAME name a part of a field")


def check_metric_finite_values_for_every_declared_key(factory: ComponentFactory) -> None:
    items = evaluation_items()
    with tempfile.TemporaryDirectory() as folder:
        metric = build_metric(factory, Path(folder))
        values = metric.compute(items["different"])
    require(set(values) == set(metric.higher_is_better), factory,
            f"returned {sorted(values)}, but declares {sorted(metric.higher_is_better)} in higher_is_better")
    not_finite = {key: value for key, value in values.items() if not math.isfinite(float(value))}
    require(not not_finite, factory, f"non-finite values {not_finite}")


def check_metric_identical_inputs_get_the_best_score(factory: ComponentFactory) -> None:
    """For the keys of BEST_WHEN_IDENTICAL: better for identical than for different inputs, and the
    known best value where there is one."""
    items = evaluation_items()
    with tempfile.TemporaryDirectory() as folder:
        metric = build_metric(factory, Path(folder))
        keys = [key for key in metric.higher_is_better if key in BEST_WHEN_IDENTICAL]
        if not keys:
            raise NotApplicable(f"{factory} returns no key with a known best score ({', '.join(BEST_WHEN_IDENTICAL)})")
        same, different = metric.compute(items["identical"]), metric.compute(items["different"])
    for key in keys:
        better = same[key] > different[key] if metric.higher_is_better[key] else same[key] < different[key]
        require(better, factory, f"{key} {same[key]} for identical inputs is not better than {different[key]} otherwise")
        best = BEST_WHEN_IDENTICAL[key]
        if best is not None:
            require(abs(same[key] - best) <= 1e-6, factory, f"{key} is {same[key]} for identical inputs, expected {best}")
