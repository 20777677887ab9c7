"""Contract of the ``metric`` kind, run for every registered metric built with its example options.

Every metric returns a finite value for each key it declares in ``higher_is_better`` on a small
item that has everything a metric can ask for (``requires`` names only EvalItem fields, or
``labels.NAME``); where a best score is defined by the metric's meaning (a video compared with
itself), identical inputs get it.

The item: 40 frames (1.6 s) of a real face photo (skimage's astronaut, 128 px) turning a few
degrees, a synthetic voiced signal, ground-truth labels shaped like the synthetic domain's,
a motion source and references. Metrics that score with a trained component take its
checkpoint path in an option named ``checkpoint`` (kind given by their ``role`` option) or named
after the component's kind (``oracle``); the test saves an untrained component of that kind,
built from the first registered implementation's example options, and passes its path.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import attrs
import numpy as np
import pytest
import skimage.data
import torch
from skimage.transform import rotate

from styletalker_core.checkpoint import save_checkpoint
from styletalker_core.data.synthetic import IDENTITY_DIM
from styletalker_core.interfaces.metric import EvalItem, Metric
from styletalker_core.plugin_host import get_registries
from styletalker_core.registry import ComponentSpec, build_component
from styletalker_core.registry.registry import Entry

METRICS = list(get_registries()["metric"])
IDS = [entry.name for entry in METRICS]
FRAMES = 40
CHECKPOINT_OPTIONS = ("checkpoint", "oracle")
# Values whose best score is known when a video is compared with itself.
# None: better than for different inputs, with no fixed value (PSNR is capped by an option; the
# identity reference is one frame of a moving video, so CSIM compares it with turned faces too).
BEST_WHEN_IDENTICAL = {"psnr": None, "ssim": 1.0, "lmd": 0.0, "lmd_face": 0.0, "csim": None, "csim_distance": None}


def _face_video(angles: np.ndarray) -> torch.Tensor:
    face = skimage.data.astronaut()[20:276, 100:356][::2, ::2]
    frames = [rotate(face, angle, mode="edge", preserve_range=True).astype(np.uint8) for angle in angles]
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _labels(seed: int) -> dict[str, torch.Tensor]:
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


@pytest.fixture(scope="module")
def items() -> dict[str, EvalItem]:
    """'different': references differ a little from the frames; 'identical': frames are their own reference."""
    angles = 3.0 * np.sin(np.arange(FRAMES) / 4.0)
    frames = _face_video(angles)
    seconds = np.arange(FRAMES * 640) / 16000
    voice = np.sin(2 * np.pi * 140 * seconds) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * seconds))
    audio = torch.from_numpy(0.3 * voice).float()
    noise = 0.03 * torch.randn(frames.shape, generator=torch.Generator().manual_seed(0))
    common = dict(audio=audio, motion_frames=frames.flip(0), labels=_labels(1), motion_labels=_labels(2))
    return {
        "different": EvalItem(frames=frames, reference_frames=_face_video(angles + 1.0) + noise, reference_image=frames[5] + noise[0], **common),
        "identical": EvalItem(frames=frames, reference_frames=frames.clone(), reference_image=frames[0].clone(), **common),
    }


def _checkpoint_options(entry: Entry, folder: Path) -> dict[str, str]:
    """Paths to untrained checkpoints for the metric's checkpoint options (see the module notes)."""
    parameters = inspect.signature(entry.factory).parameters
    options = {}
    for name in CHECKPOINT_OPTIONS:
        if name not in parameters:
            continue
        role = parameters["role"].default if "role" in parameters else name
        registries = get_registries()
        implementation = next(iter(registries[role]))
        torch.manual_seed(0)
        module = build_component(registries, role, ComponentSpec(implementation.name, dict(implementation.example_options)))
        path = folder / f"{entry.name}_{name}.safetensors"
        save_checkpoint(path, {role: module})
        options[name] = str(path)
    return options


def build(entry: Entry, folder: Path) -> Metric:
    options = {**entry.example_options, **_checkpoint_options(entry, folder)}
    return build_component(get_registries(), "metric", ComponentSpec(entry.name, options))


def test_builtin_metrics_are_registered() -> None:
    assert {"psnr", "ssim", "lmd", "csim", "blink_rate", "pose_diversity", "cpbd"} <= set(IDS)


@pytest.mark.parametrize("entry", METRICS, ids=IDS)
def test_declares_what_it_needs_and_returns(entry: Entry, tmp_path: Path) -> None:
    metric = build(entry, tmp_path)
    fields = {field.name for field in attrs.fields(EvalItem)}
    assert metric.higher_is_better and all(isinstance(v, bool) for v in metric.higher_is_better.values())
    for requirement in metric.requires:
        field, _, label = requirement.partition(".")
        assert field in fields, f"{entry.name} requires unknown EvalItem field {field!r}"
        assert not label or field in ("labels", "motion_labels")


@pytest.mark.parametrize("entry", METRICS, ids=IDS)
def test_finite_values_for_every_declared_key(entry: Entry, items: dict[str, EvalItem], tmp_path: Path) -> None:
    metric = build(entry, tmp_path)
    values = metric.compute(items["different"])
    assert set(values) == set(metric.higher_is_better), f"{entry.name} returned {sorted(values)}"
    not_finite = {key: value for key, value in values.items() if not math.isfinite(float(value))}
    assert not not_finite, f"{entry.name}: {not_finite}"


def _has_defined_best(entry: Entry) -> bool:
    """Built with its example options only (checkpoints load on first use, not here)."""
    metric = build_component(get_registries(), "metric", ComponentSpec(entry.name, dict(entry.example_options)))
    return any(key in BEST_WHEN_IDENTICAL for key in metric.higher_is_better)


WITH_BEST = [entry for entry in METRICS if _has_defined_best(entry)]


def test_the_best_score_check_covers_the_reference_metrics() -> None:
    assert {"psnr", "ssim", "lmd", "csim"} <= {entry.name for entry in WITH_BEST}


@pytest.mark.parametrize("entry", WITH_BEST, ids=[entry.name for entry in WITH_BEST])
def test_identical_inputs_get_the_best_score(entry: Entry, items: dict[str, EvalItem], tmp_path: Path) -> None:
    metric = build(entry, tmp_path)
    keys = [key for key in metric.higher_is_better if key in BEST_WHEN_IDENTICAL]
    same, different = metric.compute(items["identical"]), metric.compute(items["different"])
    for key in keys:
        better = same[key] > different[key] if metric.higher_is_better[key] else same[key] < different[key]
        assert better, f"{entry.name}: {key} {same[key]} for identical inputs, {different[key]} otherwise"
        if BEST_WHEN_IDENTICAL[key] is not None:
            assert same[key] == pytest.approx(BEST_WHEN_IDENTICAL[key], abs=1e-6)
