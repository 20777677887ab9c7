"""Converter ``rosinality-stylegan2``: rosinality/stylegan2-pytorch checkpoints (.pt) ->
stylegan2 generator (``g_ema`` + ``latent_avg``) and discriminator (``d``, when present).

Read with ``torch.load(weights_only=True)`` (``argparse.Namespace``, stored by its training
script, is the only extra class allowed). That code has no record of its constructor
arguments, so the options come from tensor shapes: resolution from the number of layers,
z/w width from the mapping layers, feature maps per resolution (as channel_base and
channel_max). Its mapping learning-rate multiplier (``lr_mlp``) is not recorded; its
default, 0.01, is assumed.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from styletalker_core.checkpoint.convert import Computed, ConversionError, Drop, KeyTable, Rename
from styletalker_core.checkpoint.files import sniff_format
from styletalker_core.checkpoint.safe_pickle import weights_only_refusal
from styletalker_core.errors import CheckpointError
from styletalker_core.interfaces import ComponentSource, Converter
from styletalker_core.nn import binomial_filter

if TYPE_CHECKING:
    from styletalker_stylegan2.generator import StyleGAN2Generator

logger = logging.getLogger(__name__)

FILTER = [1, 3, 3, 1]
W_AVG_SAMPLES = 10_000


def _res(block: int) -> int:
    """Resolution of the block after ``block`` up-sampling steps from 4x4."""
    return 2 ** (block + 3)


def _blur_check(tensor: torch.Tensor, groups: dict[str, Any]) -> bool:
    f = binomial_filter(FILTER)
    expected = torch.outer(f, f)
    return tensor.shape == (4, 4) and torch.allclose(tensor.float() / tensor.float().sum(), expected, atol=1e-6)


def _noise_destination(groups: dict[str, Any]) -> str:
    i = groups["i"]
    if i == 0:
        return "synthesis_network.b4.conv1.noise_const"
    return f"synthesis_network.b{_res((i - 1) // 2)}.conv{(i - 1) % 2}.noise_const"


def _conv_prefix(groups: dict[str, Any]) -> str:
    return f"synthesis_network.b{_res(groups['i'] // 2)}.conv{groups['i'] % 2}"


def _squeeze0(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.reshape(tensor.shape[1:])


GENERATOR_TABLE = KeyTable([
    Rename("style.{i}.weight", lambda g: f"mapping_network.fc{g['i'] - 1}.weight"),
    Rename("style.{i}.bias", lambda g: f"mapping_network.fc{g['i'] - 1}.bias"),
    Rename("latent_avg", "mapping_network.w_avg"),
    Computed("mapping_network.w_avg", "the mean of mapped latents, when the file has no latent_avg"),
    Rename("input.input", "synthesis_network.b4.const", _squeeze0),
    Rename("conv1.conv.weight", "synthesis_network.b4.conv1.weight", _squeeze0),
    Rename("conv1.conv.modulation.weight", "synthesis_network.b4.conv1.affine.weight"),
    Rename("conv1.conv.modulation.bias", "synthesis_network.b4.conv1.affine.bias"),
    Rename("conv1.noise.weight", "synthesis_network.b4.conv1.noise_strength", lambda t: t.reshape(())),
    Rename("conv1.activate.bias", "synthesis_network.b4.conv1.bias"),
    Rename("to_rgb1.conv.weight", "synthesis_network.b4.torgb.weight", _squeeze0),
    Rename("to_rgb1.conv.modulation.weight", "synthesis_network.b4.torgb.affine.weight"),
    Rename("to_rgb1.conv.modulation.bias", "synthesis_network.b4.torgb.affine.bias"),
    Rename("to_rgb1.bias", "synthesis_network.b4.torgb.bias", lambda t: t.reshape(-1)),
    Drop("convs.{i}.conv.blur.kernel", "the [1, 3, 3, 1] up-sampling filter, built in", _blur_check),
    Rename("convs.{i}.conv.weight", lambda g: _conv_prefix(g) + ".weight", _squeeze0),
    Rename("convs.{i}.conv.modulation.weight", lambda g: _conv_prefix(g) + ".affine.weight"),
    Rename("convs.{i}.conv.modulation.bias", lambda g: _conv_prefix(g) + ".affine.bias"),
    Rename("convs.{i}.noise.weight", lambda g: _conv_prefix(g) + ".noise_strength", lambda t: t.reshape(())),
    Rename("convs.{i}.activate.bias", lambda g: _conv_prefix(g) + ".bias"),
    Drop("to_rgbs.{i}.upsample.kernel", "the [1, 3, 3, 1] up-sampling filter, built in", _blur_check),
    Rename("to_rgbs.{i}.conv.weight", lambda g: f"synthesis_network.b{_res(g['i'])}.torgb.weight", _squeeze0),
    Rename("to_rgbs.{i}.conv.modulation.weight", lambda g: f"synthesis_network.b{_res(g['i'])}.torgb.affine.weight"),
    Rename("to_rgbs.{i}.conv.modulation.bias", lambda g: f"synthesis_network.b{_res(g['i'])}.torgb.affine.bias"),
    Rename("to_rgbs.{i}.bias", lambda g: f"synthesis_network.b{_res(g['i'])}.torgb.bias", lambda t: t.reshape(-1)),
    Rename("noises.noise_{i}", _noise_destination, lambda t: t.reshape(t.shape[-2:])),
])


def discriminator_table(resolution: int) -> KeyTable:
    """rosinality's ``convs`` Sequential: 0 is fromrgb, then one ResBlock per resolution."""
    top = int(math.log2(resolution))

    def block(groups: dict[str, Any]) -> str:
        return f"b{2 ** (top - groups['i'] + 1)}"

    return KeyTable([
        Rename("convs.0.0.weight", f"b{resolution}.fromrgb.weight"),
        Rename("convs.0.1.bias", f"b{resolution}.fromrgb.bias"),
        Rename("convs.{i}.conv1.0.weight", lambda g: block(g) + ".conv0.weight"),
        Rename("convs.{i}.conv1.1.bias", lambda g: block(g) + ".conv0.bias"),
        Drop("convs.{i}.conv2.0.kernel", "the [1, 3, 3, 1] down-sampling filter, built in", _blur_check),
        Rename("convs.{i}.conv2.1.weight", lambda g: block(g) + ".conv1.weight"),
        Rename("convs.{i}.conv2.2.bias", lambda g: block(g) + ".conv1.bias"),
        Drop("convs.{i}.skip.0.kernel", "the [1, 3, 3, 1] down-sampling filter, built in", _blur_check),
        Rename("convs.{i}.skip.1.weight", lambda g: block(g) + ".skip.weight"),
        Rename("final_conv.0.weight", "epilogue.conv.weight"),
        Rename("final_conv.1.bias", "epilogue.conv.bias"),
        Rename("final_linear.0.weight", "epilogue.fc.weight"),
        Rename("final_linear.0.bias", "epilogue.fc.bias"),
        Rename("final_linear.1.weight", "epilogue.out.weight"),
        Rename("final_linear.1.bias", "epilogue.out.bias"),
    ])


def channel_settings(channels: dict[int, int], source: str) -> tuple[int, int]:
    """(channel_base, channel_max) reproducing ``channels`` (resolution -> feature maps)."""
    channel_max = max(channels.values())
    below = [r for r, c in channels.items() if c < channel_max]
    channel_base = channels[min(below)] * min(below) if below else channel_max * max(channels)
    if any(min(channel_base // r, channel_max) != c for r, c in channels.items()):
        raise ConversionError(f"{source}: feature maps {channels} do not follow min(base / resolution, max)")
    return channel_base, channel_max


def generator_options(state: dict[str, torch.Tensor], source: str) -> dict[str, Any]:
    mapping_layers = len([k for k in state if re.fullmatch(r"style\.\d+\.weight", k)])
    conv_count = len([k for k in state if re.fullmatch(r"convs\.\d+\.conv\.weight", k)])
    if mapping_layers == 0 or "input.input" not in state or conv_count % 2:
        raise ConversionError(f"{source}: not a rosinality StyleGAN2 generator state (style.*, input.input, convs.*)")
    resolution = 4 * 2 ** (conv_count // 2)
    channels = {4: state["conv1.conv.weight"].shape[1]}
    for i in range(1, conv_count, 2):
        channels[_res(i // 2)] = state[f"convs.{i}.conv.weight"].shape[1]
    channel_base, channel_max = channel_settings(channels, source)
    return dict(
        resolution=resolution,
        z_dim=state["style.1.weight"].shape[1],
        w_dim=state[f"style.{mapping_layers}.weight"].shape[0],
        img_channels=state["to_rgb1.conv.weight"].shape[1],
        channel_base=channel_base,
        channel_max=channel_max,
        mapping_layers=mapping_layers,
        mapping_lr_multiplier=0.01,
        resample_filter=FILTER,
    )


def discriminator_options(state: dict[str, torch.Tensor], source: str) -> dict[str, Any]:
    blocks = len([k for k in state if re.fullmatch(r"convs\.\d+\.conv1\.0\.weight", k)])
    if "convs.0.0.weight" not in state or blocks == 0:
        raise ConversionError(f"{source}: not a rosinality StyleGAN2 discriminator state")
    resolution = 4 * 2 ** blocks
    channels = {resolution: state["convs.0.0.weight"].shape[0]}
    for i in range(1, blocks + 1):
        channels[resolution // 2 ** i] = state[f"convs.{i}.conv2.1.weight"].shape[0]
    channel_base, channel_max = channel_settings(channels, source)
    return dict(
        resolution=resolution, img_channels=state["convs.0.0.weight"].shape[1], channel_base=channel_base,
        channel_max=channel_max, mbstd_group_size=4, mbstd_num_channels=1, resample_filter=FILTER,
    )


def _mean_w(module: torch.nn.Module) -> None:
    """Fill w_avg with the mean of mapped latents (rosinality's generate.py does the same)."""
    generator = cast("StyleGAN2Generator", module)  # the component this source builds
    rng = torch.Generator().manual_seed(0)
    with torch.no_grad():
        z = torch.randn(W_AVG_SAMPLES, generator.z_dim, generator=rng)
        generator.w_avg.copy_(generator.mapping(z)[:, 0].mean(dim=0))
    logger.warning("no latent_avg in the file: w_avg estimated from %d mapped samples", W_AVG_SAMPLES)


class RosinalityStyleGAN2Converter(Converter):
    """rosinality stylegan2-pytorch .pt (g_ema, latent_avg, optional d) -> stylegan2 generator and discriminator."""

    description = "rosinality stylegan2-pytorch .pt: g_ema (+ latent_avg) and d"

    def detect(self, path: Path) -> bool:
        if sniff_format(path) != "torch-zip":
            return False
        try:
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.endswith("data.pkl")]
                return bool(names) and b"g_ema" in archive.read(names[0]) and b"to_rgb1" in archive.read(names[0])
        except (OSError, zipfile.BadZipFile):
            return False

    def generator_source(
        self, g_ema: dict[str, torch.Tensor], latent_avg: torch.Tensor | None, path: Path, role: str = "generator"
    ) -> ComponentSource:
        """The ``generator`` component of a rosinality generator state dict (also for other formats
        that embed one, such as pSp/e4e checkpoints' ``decoder.*``: reach it through the registry,
        ``registries["converter"].build("rosinality-stylegan2").generator_source(...)``).
        Without ``latent_avg``, w_avg is estimated from mapped samples."""
        state = dict(g_ema)
        if latent_avg is not None:
            state["latent_avg"] = latent_avg.reshape(-1)
        options = generator_options(state, str(path))
        return ComponentSource(
            role, "generator", "stylegan2", options, state, GENERATOR_TABLE,
            finalize=None if latent_avg is not None else _mean_w, notes={"network": "g_ema"},
        )

    def read(self, path: Path) -> list[ComponentSource]:
        try:
            with torch.serialization.safe_globals([argparse.Namespace]):
                data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - weights_only refuses anything else: report, never retry unsafely
            raise CheckpointError(weights_only_refusal(path, error, "rosinality stylegan2-pytorch checkpoint")) from None
        if not isinstance(data, dict) or not isinstance(data.get("g_ema"), dict):
            raise ConversionError(f"{path}: no 'g_ema' state dict (is it a rosinality stylegan2-pytorch checkpoint?)")
        latent_avg = data.get("latent_avg")
        sources = [self.generator_source(data["g_ema"], latent_avg if isinstance(latent_avg, torch.Tensor) else None, path)]
        if isinstance(data.get("d"), dict):
            d_state = dict(data["d"])
            d_options = discriminator_options(d_state, str(path))
            sources.append(ComponentSource(
                "discriminator", "discriminator", "stylegan2", d_options, d_state,
                discriminator_table(d_options["resolution"]), notes={"network": "d"},
            ))
        return sources
