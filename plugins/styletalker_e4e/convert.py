"""Converters ``e4e`` and ``psp``: published encoder4editing / pixel2style2pixel checkpoints (.pt).

Those files are ``torch.save`` archives of ``{"state_dict": net.state_dict(), "opts": vars(opts),
"latent_avg": [18, 512], ...}``: ``state_dict`` holds ``encoder.*`` (IR-SE-50 backbone,
``styles.<i>`` map-to-style heads, ``latlayer1/2``) and ``decoder.*`` (a rosinality StyleGAN2
generator); ``opts`` is a plain dict. They are read with ``torch.load(weights_only=True)``,
which rebuilds tensors and plain containers only: a file that needs any other global (an
argparse Namespace, a class from the training code, or something malicious) is refused and
nothing in it runs. Options come from ``opts`` (encoder type, output size, input channels)
and from tensor shapes (backbone depth and widths, SE or not).

Output: role ``image_encoder`` (e4e encoder, ``progressive`` for Encoder4Editing, not for
pSp's GradualStyleEncoder) and role ``generator`` (stylegan2, through the rosinality key table).
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from styletalker_core.checkpoint.convert import Computed, ConversionError, KeyTable, Rename
from styletalker_core.checkpoint.files import sniff_format
from styletalker_core.checkpoint.safe_pickle import weights_only_refusal
from styletalker_core.errors import CheckpointError
from styletalker_core.interfaces import ComponentSource, Converter
from styletalker_stylegan2.convert_rosinality import GENERATOR_TABLE, generator_options

if TYPE_CHECKING:
    from styletalker_e4e.encoder import E4EEncoder

ENCODER_TYPES = {"Encoder4Editing": True, "GradualStyleEncoder": False}  # name -> progressive (e4e)

ENCODER_TABLE = KeyTable([
    Rename("input_layer.{rest}", "backbone.input_layer.{rest}"),
    Rename("body.{rest}", "backbone.body.{rest}"),
    Rename("styles.{rest}", "styles.{rest}"),
    Rename("latlayer1.{rest}", "latlayer1.{rest}"),
    Rename("latlayer2.{rest}", "latlayer2.{rest}"),
    Rename("latent_avg", "latent_avg"),
    Computed("latent_avg", "zeros when the checkpoint was trained without start_from_latent_avg"),
    Computed("backbone.{rest}.num_batches_tracked", "BatchNorm step counters, absent from some files; unused in eval"),
    Computed("ood_psnr_threshold", "not measured for published encoders (0: no out-of-domain warning)"),
    Computed("progressive_stage", "inference: every layer delta active"),
])


def load_published(path: Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` of a pSp/e4e file; refuses (one line) anything needing other globals."""
    try:
        data = torch.load(io.BytesIO(Path(path).read_bytes()), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - weights_only refuses every global it does not know: never retry unsafely
        raise CheckpointError(
            weights_only_refusal(path, error, "plain tensor checkpoint")
            + ". Re-save it as {'state_dict', 'opts' (a dict), 'latent_avg'} or use a trusted copy"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("state_dict"), dict):
        raise ConversionError(f"{path}: no 'state_dict' (is it an e4e or pSp checkpoint?)")
    if not isinstance(data.get("opts", {}), dict):
        raise ConversionError(f"{path}: 'opts' is not a plain dict; re-save it with opts = vars(opts)")
    return data


def _stages(state: dict[str, torch.Tensor], source: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(channels, units) per backbone stage from the body's conv shapes (published widths rise stage by stage)."""
    widths: list[int] = []
    while f"body.{len(widths)}.res_layer.1.weight" in state:
        widths.append(int(state[f"body.{len(widths)}.res_layer.1.weight"].shape[0]))
    if not widths:
        raise ConversionError(f"{source}: no backbone units (encoder.body.<i>.res_layer.*)")
    channels: list[int] = []
    units: list[int] = []
    for width in widths:
        if channels and width == channels[-1]:
            units[-1] += 1
        else:
            channels.append(width)
            units.append(1)
    return tuple(channels), tuple(units)


def _head_convs(state: dict[str, torch.Tensor], head: int) -> int:
    return len([k for k in state if re.fullmatch(rf"styles\.{head}\.convs\.\d+\.weight", k)])


def encoder_options(state: dict[str, torch.Tensor], opts: dict[str, Any], source: str) -> dict[str, Any]:
    """Constructor options of the e4e component for a published encoder state (``encoder.`` removed)."""
    encoder_type = opts.get("encoder_type", "Encoder4Editing" if "styles.0.linear.weight" in state else None)
    if encoder_type not in ENCODER_TYPES:
        raise ConversionError(f"{source}: encoder_type {encoder_type!r} is not supported; supported: {', '.join(ENCODER_TYPES)}")
    if int(opts.get("input_nc", 3)) != 3 or int(opts.get("label_nc", 0)) != 0:
        raise ConversionError(f"{source}: input_nc {opts.get('input_nc')} / label_nc {opts.get('label_nc')}: only RGB-image encoders convert")
    num_ws = len([k for k in state if re.fullmatch(r"styles\.\d+\.linear\.weight", k)])
    size = opts.get("stylegan_size", opts.get("output_size"))
    if size is not None and num_ws != 2 * int(math.log2(int(size))) - 2:
        raise ConversionError(f"{source}: {num_ws} style heads do not match a {size} px generator")
    channels, units = _stages(state, source)
    # The coarse heads reduce c3 (input / 2^stages) to 1x1 with one stride-2 conv per halving.
    resolution = 2 ** (len(channels) + _head_convs(state, 0))
    se = "body.0.res_layer.5.fc1.weight" in state
    reduction = 16
    if se:
        reduction = int(state["body.0.res_layer.5.fc1.weight"].shape[1] // state["body.0.res_layer.5.fc1.weight"].shape[0])
    return dict(
        resolution=resolution,
        num_ws=num_ws,
        w_dim=int(state["styles.0.linear.weight"].shape[0]),
        backbone="ir_se" if se else "ir",
        stem_channels=int(state["input_layer.0.weight"].shape[0]),
        channels=list(channels),
        units=list(units),
        se_reduction=reduction,
        coarse_layers=3,
        medium_layers=4,
        progressive=ENCODER_TYPES[encoder_type],
        domain=str(opts.get("dataset_type", "")),
    )


def _finalize_encoder(has_latent_avg: bool) -> Any:
    def finalize(module: torch.nn.Module) -> None:
        encoder = cast("E4EEncoder", module)  # the component this source builds
        if not has_latent_avg:
            encoder.latent_avg.zero_()
        encoder.ood_psnr_threshold.zero_()
        encoder.set_progressive_stage(encoder.num_ws)
        for name, buffer in module.named_buffers():
            if name.endswith("num_batches_tracked"):
                buffer.zero_()

    return finalize


def _is_psp_archive(path: Path) -> bool:
    if sniff_format(path) != "torch-zip":
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("data.pkl")]
            head = archive.read(names[0]) if names else b""
    except (OSError, zipfile.BadZipFile):
        return False
    return b"state_dict" in head and b"encoder.styles" in head


class PSPConverter(Converter):
    """pixel2style2pixel .pt (GradualStyleEncoder + rosinality decoder) -> e4e image_encoder (progressive off) and stylegan2 generator."""

    description = "pSp / e4e .pt: encoder -> image_encoder, decoder -> generator"
    encoder_types: tuple[str, ...] = ("GradualStyleEncoder",)

    def detect(self, path: Path) -> bool:
        if not _is_psp_archive(path):
            return False
        with zipfile.ZipFile(path) as archive:
            head = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
        return any(t.encode() in head for t in self.encoder_types)

    def read(self, path: Path) -> list[ComponentSource]:
        data = load_published(path)
        opts = dict(data.get("opts", {}))
        state = data["state_dict"]
        encoder_state = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
        decoder_state = {k[len("decoder."):]: v for k, v in state.items() if k.startswith("decoder.")}
        other = sorted(k for k in state if not k.startswith(("encoder.", "decoder.")))
        if other:
            raise ConversionError(f"{path}: unexpected state_dict keys {', '.join(other[:8])}")
        options = encoder_options(encoder_state, opts, str(path))
        if opts.get("encoder_type") is not None and opts["encoder_type"] not in self.encoder_types:
            raise ConversionError(f"{path}: encoder_type {opts['encoder_type']!r}; use the converter for that type")
        latent_avg = data.get("latent_avg")
        if not isinstance(latent_avg, torch.Tensor):
            latent_avg = None
        has_latent_avg = latent_avg is not None
        if latent_avg is not None:
            encoder_state["latent_avg"] = latent_avg.reshape(-1, latent_avg.shape[-1]).expand(options["num_ws"], -1).clone()
        notes = {"opts": {k: v for k, v in opts.items() if isinstance(v, (str, int, float, bool)) or v is None}}
        sources = [ComponentSource("image_encoder", "image_encoder", "e4e", options, encoder_state, ENCODER_TABLE,
                                   finalize=_finalize_encoder(has_latent_avg), notes=notes)]
        if decoder_state:
            if latent_avg is not None:
                decoder_state["latent_avg"] = latent_avg.reshape(-1, latent_avg.shape[-1])[0]
            g_options = generator_options(decoder_state, str(path))
            if not has_latent_avg:
                raise ConversionError(f"{path}: has a decoder but no latent_avg; convert the generator from its "
                                      "original StyleGAN2 checkpoint instead (styletalker convert --format rosinality-stylegan2)")
            sources.append(ComponentSource("generator", "generator", "stylegan2", g_options, decoder_state,
                                           GENERATOR_TABLE, notes={"network": "decoder"}))
        return sources


class E4EConverter(PSPConverter):
    """encoder4editing .pt (Encoder4Editing + rosinality decoder) -> e4e image_encoder (progressive) and stylegan2 generator."""

    description = "encoder4editing .pt: encoder -> image_encoder (progressive deltas), decoder -> generator"
    encoder_types = ("Encoder4Editing",)
