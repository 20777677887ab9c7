"""Shared fixtures: fresh registries holding tiny real components, and a recipe-file writer.

The tiny components are small but real (they compute, train and checkpoint), so tests of
the foundation do not depend on any built-in plugin being finished.

The suite runs torch on one thread, in this process and in the processes it starts (see
:data:`SUITE_THREADS`).
"""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import pytest
import torch
from torch import nn

from styletalker_core.interfaces import Flow, Generator, Prior
from styletalker_core.registry import ComponentOf, ComponentSpec, Origin, Registries, build_component

TEST_ORIGIN = Origin("styletalker-tests", "0.0.0", "tests.conftest")

# Torch threads for the whole suite (OMP_NUM_THREADS when set, else 1). Its models are tiny and CI
# machines have 2 shared cores, where OpenMP's pools spend more CPU waiting than computing: on a
# loaded 2-core machine test_end_to_end.py took 46 s of CPU on torch's default 2 threads and 11 s on
# one, test_real_data_path.py 164 s and 54 s. The environment variable carries it to `styletalker`
# subprocesses; torch may already be imported (pytest plugins), so it is also set directly.
SUITE_THREADS = int(os.environ.setdefault("OMP_NUM_THREADS", "1"))
torch.set_num_threads(SUITE_THREADS)


@pytest.fixture(autouse=True)
def _suite_threads():
    """Puts the thread count back when a test changed it (``runtime.num_threads`` in a recipe it trains)."""
    yield
    if torch.get_num_threads() != SUITE_THREADS:
        torch.set_num_threads(SUITE_THREADS)


class TinyGenerator(Generator):
    """W+ codes [b, l, w] -> images [b, 3, r, r]: one linear layer and tanh."""

    def __init__(self, resolution: int = 4, num_ws: int = 2, w_dim: int = 8, label: str = "tiny") -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = w_dim, 0, w_dim
        self.num_ws, self.resolution, self.img_channels = num_ws, resolution, 3
        self.label = label
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.mapping_layer = nn.Linear(w_dim, w_dim)
        self.to_pixels = nn.Linear(num_ws * w_dim, 3 * resolution * resolution)

    def mapping(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, update_emas=False):
        ws = self.mapping_layer(z).unsqueeze(1).repeat(1, self.num_ws, 1)
        cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
        truncated = self.w_avg + truncation_psi * (ws[:, :cutoff] - self.w_avg)
        return torch.cat([truncated, ws[:, cutoff:]], dim=1)

    def synthesis(self, ws, noise_mode="const", update_emas=False):
        pixels = torch.tanh(self.to_pixels(ws.flatten(1)))
        return pixels.view(ws.shape[0], 3, self.resolution, self.resolution)


class TinyAffineFlow(Flow):
    """u [n, z] -> z = u * exp(s(context)) + t(context): one conditional affine layer."""

    def __init__(self, dim: int = 2, context_dim: int = 3, hidden: int = 4) -> None:
        super().__init__()
        self.dim, self.context_dim = dim, context_dim
        self.net = nn.Sequential(nn.Linear(context_dim, hidden), nn.Tanh(), nn.Linear(hidden, 2 * dim))

    def forward(self, u, context):
        shift, log_scale = self.net(context).chunk(2, dim=-1)
        return u * log_scale.exp() + shift, log_scale.sum(-1)

    def inverse(self, z, context):
        shift, log_scale = self.net(context).chunk(2, dim=-1)
        return (z - shift) * (-log_scale).exp(), -log_scale.sum(-1)


def tiny_stage(frames: int = 4, loss: str = "l1", weights: list[float] | None = None) -> dict[str, Any]:
    """A stage factory (stages are plain callables): returns its own settings."""
    return {"frames": frames, "loss": loss, "weights": weights}


def make_tiny_prior(registries: Registries) -> type[Prior]:
    """A prior class whose nested ``flow`` option is built from ``registries``."""

    class TinyPrior(Prior):
        """Gaussian prior on each step, mean from the audio features, pushed through a nested flow."""

        def __init__(
            self,
            flow: Annotated[ComponentSpec, ComponentOf("flow")],
            z_dim: int = 2,
            feature_dim: int = 3,
        ) -> None:
            super().__init__()
            self.z_dim, self.feature_dim = z_dim, feature_dim
            self.mean = nn.Linear(feature_dim, z_dim)
            self.flow = build_component(registries, "flow", flow, dim=z_dim, context_dim=feature_dim)

        def log_prob(self, z, audio_features):
            b, t, _ = z.shape
            u, log_det = self.flow.inverse(z.reshape(b * t, -1), audio_features.reshape(b * t, -1))
            base = torch.distributions.Normal(self.mean(audio_features).reshape(b * t, -1), 1.0)
            return (base.log_prob(u).sum(-1) + log_det).view(b, t)

        def sample(self, audio_features, temperature=1.0, state=None, generator=None):
            b, t, _ = audio_features.shape
            mean = self.mean(audio_features).reshape(b * t, -1)
            noise = torch.randn(mean.shape, generator=generator)
            z, _ = self.flow(mean + temperature * noise, audio_features.reshape(b * t, -1))
            return z.view(b, t, -1), state

    return TinyPrior


def tiny_registries() -> Registries:
    """Fresh registries holding generator 'tiny_linear', flow 'tiny_affine', prior 'tiny_prior',
    stage 'tiny_stage' and the built-in logger 'jsonl'."""
    from styletalker_loggers.jsonl import JsonLinesLogger

    registries = Registries()
    registries["generator"].register("tiny_linear", TinyGenerator, TEST_ORIGIN)
    registries["flow"].register("tiny_affine", TinyAffineFlow, TEST_ORIGIN)
    registries["prior"].register("tiny_prior", make_tiny_prior(registries), TEST_ORIGIN)
    registries["stage"].register("tiny_stage", tiny_stage, TEST_ORIGIN)
    registries["logger"].register("jsonl", JsonLinesLogger, Origin("styletalker", "0.1.0", "styletalker_loggers.plugin"))
    return registries


@pytest.fixture
def registries() -> Registries:
    """Fresh registries with the tiny test components (see :func:`tiny_registries`)."""
    return tiny_registries()


@pytest.fixture
def write_recipe(tmp_path: Path) -> Callable[[str, str], Path]:
    """``write_recipe("name.toml", text)`` writes dedented ``text`` into tmp_path and returns the path."""

    def write(filename: str, text: str) -> Path:
        path = tmp_path / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return write


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A temporary site directory on sys.path; modules imported from it are forgotten afterwards."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    before = set(sys.modules)
    yield folder
    for name in set(sys.modules) - before:
        if getattr(sys.modules[name], "__file__", None) and str(folder) in str(sys.modules[name].__file__):
            del sys.modules[name]
    importlib.invalidate_caches()


@pytest.fixture
def single_thread():
    """Torch on one thread for the test, restored after: tiny tensors run fastest so, and on a
    shared CPU thread pools stall. Modules use it with ``pytestmark = pytest.mark.usefixtures("single_thread")``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def oracle_file(tmp_path: Path) -> Callable[[int], Path]:
    """Writes a small untrained ``synthetic_factors`` oracle (resolution r) to a checkpoint and returns
    its path. Its batch-norm statistics come from random images, so its readings vary with the image."""

    def make(resolution: int = 16) -> Path:
        from styletalker_core.checkpoint import save_checkpoint
        from styletalker_core.plugin_host import get_registries
        from styletalker_core.registry import ComponentSpec, build_component

        torch.manual_seed(0)
        options = {"resolution": resolution, "channels": 4, "hidden": 16}
        oracle = build_component(get_registries(), "oracle", ComponentSpec("synthetic_factors", options))
        for layer in oracle.modules():
            if isinstance(layer, nn.BatchNorm2d):
                layer.momentum = None  # a cumulative average over the calibration batch
        with torch.no_grad():
            oracle.train()(torch.rand(64, 3, resolution, resolution) * 2 - 1)
        return save_checkpoint(tmp_path / f"oracle_{resolution}.safetensors", {"oracle": oracle.eval()})

    return make


def pytest_terminal_summary(terminalreporter) -> None:
    """The bad-input suite's summary table (tests/test_bad_inputs.py), when it ran."""
    module = next((m for m in list(sys.modules.values())
                   if getattr(m, "__file__", None) and Path(m.__file__).name == "test_bad_inputs.py"), None)
    lines = module.bad_input_report() if module is not None else []
    if lines:
        terminalreporter.write_sep("-", "bad-input suite: outcomes per command")
        for line in lines:
            terminalreporter.write_line(line)
