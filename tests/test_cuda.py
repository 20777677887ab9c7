"""CUDA: device choice, mixed-precision training steps, NCCL, and the generators on the GPU.

Marked ``cuda`` and skipped without a CUDA device (``pytest -m cuda`` selects them;
tools/gpu_check.sh runs them on a GPU machine, docs/gpu.md).
"""

from __future__ import annotations

import json
import math
import socket
from pathlib import Path

import engine_toys
import pytest
import torch

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.fixture(autouse=True)
def exact_float32(monkeypatch: pytest.MonkeyPatch):
    """No TF32 (setup_runtime turns it on for speed): comparisons with the CPU need full float32."""
    monkeypatch.setenv("STYLETALKER_PROGRESS", "0")
    engine_toys.INTERRUPT_AT = None
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.fixture(scope="module")
def registries():
    from styletalker_core.plugin_host import build_registries
    from styletalker_core.registry import Origin, Registrar

    registries = build_registries()
    engine_toys.register_toys(Registrar(registries, Origin("engine-toys", "0", "engine_toys")))
    return registries


def test_device_choice():
    from styletalker_core.recipe.schema import RuntimeConfig
    from styletalker_core.train.runtime import resolve_device, setup_runtime

    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda", local_rank=0) == torch.device("cuda", 0)
    assert resolve_device("cpu") == torch.device("cpu")
    runtime = setup_runtime(RuntimeConfig(device="auto", precision="bf16"))
    assert runtime.device.type == "cuda" and torch.cuda.current_device() == runtime.device.index
    with runtime.autocast():
        y = torch.randn(4, 8, device=runtime.device) @ torch.randn(8, 2, device=runtime.device)
    assert y.dtype == torch.bfloat16


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_steps_on_cuda(tmp_path, registries, precision):
    from styletalker_core.checkpoint import read_tensors
    from styletalker_core.recipe import structure
    from styletalker_core.train import train_recipe

    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    recipe = {
        "name": "toy", "seed": 3, "output_dir": str(tmp_path / "run"),
        "runtime": {"device": "cuda", "precision": precision},
        "data": {"train": {"name": "toy_data", "size": 64}},
        "model": {"oracle": {"name": "toy_oracle", "hidden": 32}},
        "stages": {"fit": {"name": "toy_fit", "steps": 60, "batch_size": 8, "lr": 0.02, "checkpoint_every": 20,
                           "log_every": 5, "grad_clip": 1.0}},
    }
    train_recipe(structure(recipe, registries), registries)
    losses = [json.loads(line)["mse"] for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]
    final = read_tensors(tmp_path / "run/fit/final.safetensors")
    assert all(t.dtype == torch.float32 for t in final.values() if t.is_floating_point())


def test_fp16_resume_restores_the_loss_scale(tmp_path, registries):
    from styletalker_core.checkpoint import read_tensors
    from styletalker_core.recipe import structure
    from styletalker_core.train import train_recipe

    def recipe(root: Path) -> dict:
        return {
            "name": "toy", "seed": 3, "output_dir": str(root / "run"),
            "runtime": {"device": "cuda", "precision": "fp16", "deterministic": True},
            "data": {"train": {"name": "toy_data", "size": 64}},
            "model": {"oracle": {"name": "toy_oracle"}},
            "stages": {"fit": {"name": "toy_fit", "steps": 12, "batch_size": 8, "lr": 0.05, "checkpoint_every": 4,
                               "log_every": 2}},
        }

    train_recipe(structure(recipe(tmp_path / "a"), registries), registries)
    engine_toys.INTERRUPT_AT = 9
    with pytest.raises(KeyboardInterrupt):
        train_recipe(structure(recipe(tmp_path / "b"), registries), registries)
    engine_toys.INTERRUPT_AT = None
    checkpoint = read_tensors(tmp_path / "b/run/fit/checkpoints/step_00000008.safetensors")
    assert any(key.startswith("scaler.") for key in checkpoint)
    train_recipe(structure(recipe(tmp_path / "b"), registries), registries)
    a = read_tensors(tmp_path / "a/run/fit/final.safetensors")
    b = read_tensors(tmp_path / "b/run/fit/final.safetensors")
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=0, atol=1e-6), key


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_nccl_process_group_of_one():
    import torch.distributed as dist

    from styletalker_core.train.loop import average_gradients, broadcast_modules

    if not dist.is_nccl_available():
        pytest.skip("this torch build has no NCCL")
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    try:
        device = torch.device("cuda", 0)
        model = torch.nn.Linear(8, 2).to(device)
        broadcast_modules({"model": model})
        model(torch.randn(4, 8, device=device)).square().mean().backward()
        grads = [p.grad.clone() for p in model.parameters()]
        average_gradients(list(model.parameters()), world_size=1)
        for before, parameter in zip(grads, model.parameters()):
            assert torch.equal(before, parameter.grad)
        ddp = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(8, 2).to(device), device_ids=[0])
        ddp(torch.randn(4, 8, device=device)).sum().backward()
        assert all(p.grad is not None for p in ddp.parameters())
        tensor = torch.ones(3, device=device)
        dist.all_reduce(tensor)
        assert tensor.tolist() == [1.0, 1.0, 1.0]
    finally:
        dist.destroy_process_group()


def _generators():
    from styletalker_stylegan2.generator import StyleGAN2Generator
    from styletalker_stylegan3.generator import StyleGAN3Generator

    return {
        "stylegan2": lambda: StyleGAN2Generator(resolution=64, z_dim=64, w_dim=64, channel_base=2048, channel_max=64,
                                                mapping_layers=2),
        "stylegan3-t": lambda: StyleGAN3Generator(resolution=32, config="t", z_dim=32, w_dim=32, channel_base=1024,
                                                  channel_max=32, num_layers=6),
        "stylegan3-r": lambda: StyleGAN3Generator(resolution=32, config="r", z_dim=32, w_dim=32, channel_base=2048,
                                                  channel_max=64, num_layers=6),
    }


@pytest.mark.parametrize("name", ["stylegan2", "stylegan3-t", "stylegan3-r"])
@pytest.mark.parametrize("batch", [1, 4])
def test_channels_last_generator_on_cuda_equals_cpu(name, batch):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    generator = _generators()[name]().eval()
    ws = generator.mapping(torch.randn(batch, generator.z_dim)).detach()
    with torch.inference_mode():
        generator.channels_last = False
        expected = generator.synthesis(ws)
        gpu = generator.to("cuda")
        gpu.channels_last = True
        actual = gpu.synthesis(ws.cuda()).cpu()
    scale = expected.abs().max().item()
    assert (actual - expected).abs().max().item() <= 1e-4 * max(1.0, scale)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_generator_low_precision_on_cuda_is_close(dtype):
    from styletalker_stylegan2.generator import StyleGAN2Generator

    torch.manual_seed(0)
    generator = StyleGAN2Generator(resolution=64, z_dim=64, w_dim=64, channel_base=2048, channel_max=64,
                                   mapping_layers=2).cuda().eval()
    ws = generator.mapping(torch.randn(4, 64, device="cuda")).detach()
    with torch.inference_mode():
        reference = generator.synthesis(ws)
        generator.compute_dtype = dtype
        images = generator.synthesis(ws)
    assert images.dtype == torch.float32
    mse = (images - reference).square().mean().item()
    peak = (reference.max() - reference.min()).item()
    assert 10 * math.log10(peak ** 2 / max(mse, 1e-20)) > 35
