"""Mixed-precision training (runtime.precision): bfloat16 autocast in the engine, float32 master
weights and optimizer state, exact resume, and the precisions each device refuses."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import engine_toys
import pytest
import torch

from styletalker_core.checkpoint import read_tensors
from styletalker_core.errors import StyleTalkerError
from styletalker_core.plugin_host import build_registries
from styletalker_core.recipe import structure
from styletalker_core.recipe.schema import RuntimeConfig
from styletalker_core.registry import Origin, Registrar
from styletalker_core.train import train_recipe
from styletalker_core.train.runtime import Runtime, setup_runtime

SEEN: list[dict[str, Any]] = []


class RecordingFitStage(engine_toys.ToyFitStage):
    """The toy stage, recording what autocast did to its forward pass."""

    def loss(self, phase: str, batch: dict[str, Any], step: int) -> tuple[torch.Tensor, dict[str, float]]:
        prediction = self.model(batch["images"])["target"]
        SEEN.append({"autocast": torch.is_autocast_enabled("cpu"), "dtype": prediction.dtype,
                     "weight_dtype": next(self.model.parameters()).dtype})
        return super().loss(phase, batch, step)


@pytest.fixture(autouse=True)
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STYLETALKER_PROGRESS", "0")
    engine_toys.INTERRUPT_AT = None
    SEEN.clear()


@pytest.fixture(scope="module")
def registries():
    registries = build_registries()
    registrar = Registrar(registries, Origin("engine-toys", "0", "engine_toys"))
    engine_toys.register_toys(registrar)
    registrar.register("stage", "recording_fit", RecordingFitStage)
    return registries


def toy_recipe(root: Path, precision: str, steps: int = 12, stage: str = "toy_fit", **options: Any) -> dict:
    return {
        "name": "toy",
        "seed": 3,
        "output_dir": str(root / "run"),
        "runtime": {"device": "cpu", "precision": precision},
        "data": {"train": {"name": "toy_data", "size": 64}},
        "model": {"oracle": {"name": "toy_oracle", "hidden": 16}},
        "stages": {"fit": {"name": stage, "steps": steps, "batch_size": 8, "lr": 0.05, "checkpoint_every": 4,
                           "log_every": 2, **options}},
    }


def logged(root: Path, name: str = "mse") -> list[float]:
    return [json.loads(line)[name] for line in (root / "run/metrics.jsonl").read_text().splitlines()]


def test_bf16_run_autocasts_the_forward_pass_and_keeps_float32_weights(tmp_path, registries):
    result = train_recipe(structure(toy_recipe(tmp_path, "bf16", steps=40, stage="recording_fit"), registries),
                          registries)
    assert SEEN and all(s["autocast"] and s["dtype"] == torch.bfloat16 for s in SEEN)
    assert all(s["weight_dtype"] == torch.float32 for s in SEEN)  # master weights
    losses = logged(tmp_path)
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0] / 4  # it trains
    final = read_tensors(tmp_path / "run/fit/final.safetensors")
    assert all(t.dtype == torch.float32 for t in final.values() if t.is_floating_point())
    assert result.stages[0].evaluation  # evaluation runs (in float32, outside autocast)


def test_bf16_losses_follow_the_float32_run(tmp_path, registries):
    train_recipe(structure(toy_recipe(tmp_path / "fp32", "fp32", steps=8), registries), registries)
    train_recipe(structure(toy_recipe(tmp_path / "bf16", "bf16", steps=8), registries), registries)
    fp32, bf16 = logged(tmp_path / "fp32"), logged(tmp_path / "bf16")
    assert fp32 != bf16  # bf16 really ran
    for a, b in zip(fp32, bf16):
        assert abs(a - b) <= 0.05 * abs(a) + 1e-3


def test_bf16_optimizer_state_is_float32_and_resume_is_exact(tmp_path, registries):
    straight = structure(toy_recipe(tmp_path / "a", "bf16", noise=0.05), registries)
    train_recipe(straight, registries)
    interrupted = structure(toy_recipe(tmp_path / "b", "bf16", noise=0.05), registries)
    engine_toys.INTERRUPT_AT = 9  # dies after the step-8 checkpoint
    with pytest.raises(KeyboardInterrupt):
        train_recipe(interrupted, registries)
    checkpoint = read_tensors(tmp_path / "b/run/fit/checkpoints/step_00000008.safetensors")
    optimizer_state = {k: v for k, v in checkpoint.items() if k.startswith("optim.")}
    assert optimizer_state and all(v.dtype == torch.float32 for v in optimizer_state.values() if v.is_floating_point()
                                   and v.ndim > 0)
    assert all(v.dtype == torch.float32 for k, v in checkpoint.items() if k.startswith("module."))
    engine_toys.INTERRUPT_AT = None
    train_recipe(interrupted, registries)
    a = read_tensors(tmp_path / "a/run/fit/final.safetensors")
    b = read_tensors(tmp_path / "b/run/fit/final.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    log_a, log_b = logged(tmp_path / "a"), logged(tmp_path / "b")
    assert log_b[-len(log_a[4:]):] == log_a[4:]


def test_fp16_is_refused_on_the_cpu_with_what_to_use():
    with pytest.raises(StyleTalkerError, match=r"fp16.*needs CUDA.*use 'bf16' or 'fp32'"):
        setup_runtime(RuntimeConfig(device="cpu", precision="fp16"))


def test_runtime_autocast_and_scaler_per_precision():
    cpu = torch.device("cpu")
    for precision, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        runtime = Runtime(device=cpu, precision=precision)
        assert runtime.autocast_dtype == dtype
        with runtime.autocast():
            y = torch.nn.functional.linear(torch.randn(2, 3), torch.randn(4, 3))
        assert y.dtype == (dtype or torch.float32)
        assert not runtime.grad_scaler().is_enabled()


def test_stylegan2_trains_under_bf16_autocast_with_float32_gradients():
    from styletalker_stylegan2.generator import StyleGAN2Generator

    torch.manual_seed(0)
    generator = StyleGAN2Generator(resolution=16, z_dim=16, w_dim=16, channel_base=256, channel_max=32,
                                   mapping_layers=2)
    ws = generator.mapping(torch.randn(4, 16)).detach()
    target = torch.randn(4, 3, 16, 16)
    reference = generator.synthesis(ws).detach()
    runtime = Runtime(device=torch.device("cpu"), precision="bf16")
    with runtime.autocast():
        images = generator.synthesis(ws)
        loss = (images - target).abs().mean()
    loss.float().backward()
    assert math.isfinite(loss.item())
    error = (images.float() - reference).square().mean().sqrt() / reference.square().mean().sqrt()
    assert error < 0.05  # bfloat16 keeps about 3 significant digits per op
    for name, parameter in generator.named_parameters():
        assert parameter.dtype == torch.float32, name
        if parameter.grad is not None:
            assert parameter.grad.dtype == torch.float32 and torch.isfinite(parameter.grad).all(), name
