"""Converter ``nvlabs-stylegan2``: NVlabs network pickles of StyleGAN2 (stylegan2-ada-pytorch
``training.networks``, stylegan3 ``training.networks_stylegan2``) -> generator and discriminator.

Architecture options come from each object's recorded ``_init_kwargs``; tensors from its
parameters and buffers. Our generator's parameter names equal NVlabs' below
``mapping_network.`` and ``synthesis_network.``; the discriminator's equal NVlabs' except for
its last block, which NVlabs registers as ``b4`` (class ``DiscriminatorEpilogue``) and ours
calls ``epilogue``. The stored resampling filters are checked and dropped (they follow from
the ``resample_filter`` option).

Networks are recognised by class name and attribute tree (the pickles rebuild their classes
under generated module names): ``Generator`` with ``mapping`` (``MappingNetwork``) and
``synthesis`` (``SynthesisNetwork`` of ``SynthesisBlock`` ``b4`` ... ``b{resolution}``), and
``Discriminator`` with ``DiscriminatorBlock`` ``b{resolution}`` ... ``b8``, the optional label
``mapping`` and one ``DiscriminatorEpilogue``. A snapshot also holds ``G`` (the raw training
weights), ``augment_pipe`` and ``training_set_kwargs``; ``G_ema`` is the generator converted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from styletalker_core.checkpoint.convert import ConversionError, Drop, KeyTable, Rename
from styletalker_core.checkpoint.nvlabs_pickle import (
    PersistentRecord,
    check_classes,
    load_nvlabs_pickle,
    looks_like_nvlabs_pickle,
    not_converted,
    pick_generator,
)
from styletalker_core.interfaces import ComponentSource, Converter
from styletalker_core.nn import binomial_filter
from styletalker_stylegan2.options_reading import MISSING, read_options

DEFAULT_FILTER = [1, 3, 3, 1]


def nvlabs_filter_check(taps: list[float]) -> Any:
    """Check that a stored NVlabs ``resample_filter`` buffer is the one ``taps`` gives."""
    f = binomial_filter(taps)
    expected_2d = torch.outer(f, f)

    def check(tensor: torch.Tensor, groups: dict[str, Any]) -> bool:
        expected = expected_2d if tensor.ndim == 2 else f
        return tensor.shape == expected.shape and torch.allclose(tensor.float(), expected, atol=1e-6)

    return check


def generator_table(taps: list[float]) -> KeyTable:
    check = nvlabs_filter_check(taps)
    return KeyTable([
        Drop("synthesis.{layer_path}.resample_filter", "derived from the resample_filter option", check),
        Drop("synthesis.b{res}.resample_filter", "derived from the resample_filter option", check),
        Rename("mapping.{rest}", "mapping_network.{rest}"),
        Rename("synthesis.{rest}", "synthesis_network.{rest}"),
    ])


def discriminator_table(taps: list[float], epilogue: str = "b4") -> KeyTable:
    """NVlabs discriminator keys -> ours: the block ``epilogue`` (NVlabs: ``b4``, class
    ``DiscriminatorEpilogue``) becomes ``epilogue``; every other name is kept."""
    check = nvlabs_filter_check(taps)
    return KeyTable([
        Drop("{layer_path}.resample_filter", "derived from the resample_filter option", check),
        Rename(epilogue + ".{rest}", "epilogue.{rest}"),
        Rename("{rest}", "{rest}"),
    ])


def check_generator_layout(record: PersistentRecord, where: str) -> None:
    """G_ema must be NVlabs' StyleGAN2 Generator: mapping, and synthesis blocks b4 ... b{resolution}."""
    expected: dict[str, str] = {"": "Generator", "mapping": "MappingNetwork", "synthesis": "SynthesisNetwork"}
    synthesis = record.child("synthesis")
    if synthesis is not None:
        for name in synthesis.children():
            expected[f"synthesis.{name}"] = "SynthesisBlock"
    check_classes(record, expected, where)


def discriminator_epilogue(record: PersistentRecord, where: str) -> str:
    """The attribute name of the discriminator's last block (NVlabs: ``b4``), found by its class."""
    expected: dict[str, str | tuple[str, ...]] = {"": "Discriminator"}
    for name, child in record.children().items():
        if isinstance(child, PersistentRecord) and name.startswith("b") and name[1:].isdigit():
            expected[name] = ("DiscriminatorBlock", "DiscriminatorEpilogue")
        elif name == "mapping":
            expected[name] = "MappingNetwork"
    check_classes(record, expected, where)
    epilogues = list(record.children_of_class("DiscriminatorEpilogue"))
    if len(epilogues) != 1:
        raise ConversionError(f"{where}: expected one DiscriminatorEpilogue block (NVlabs' b4), found "
                              f"{', '.join(epilogues) or 'none'}")
    return epilogues[0]


def generator_options(record: PersistentRecord, source: str) -> dict[str, Any]:
    kwargs = dict(record.init_kwargs)
    kwargs.update(kwargs.pop("synthesis_kwargs", None) or {})  # stylegan2-ada nests these
    mapping = dict(kwargs.pop("mapping_kwargs", None) or {})
    options = read_options(
        kwargs, f"{source} G_ema",
        rename={
            "img_resolution": ("resolution", MISSING), "z_dim": ("z_dim", MISSING), "w_dim": ("w_dim", MISSING),
            "c_dim": ("c_dim", 0), "img_channels": ("img_channels", 3), "channel_base": ("channel_base", 32768),
            "channel_max": ("channel_max", 512), "conv_clamp": ("conv_clamp", None),
            "resample_filter": ("resample_filter", DEFAULT_FILTER), "use_noise": ("use_noise", True),
        },
        ignored=frozenset({"num_fp16_res", "fp16_channels_last", "fused_modconv_default"}),
        required={"architecture": "skip", "activation": "lrelu", "kernel_size": 3},
    )
    w_dim = options["w_dim"]
    options.update(read_options(
        mapping, f"{source} G_ema mapping",
        rename={"num_layers": ("mapping_layers", 8), "lr_multiplier": ("mapping_lr_multiplier", 0.01),
                "w_avg_beta": ("w_avg_beta", 0.998)},
        required={"activation": "lrelu", "embed_features": w_dim, "layer_features": w_dim},
    ))
    return options


def discriminator_options(record: PersistentRecord, source: str) -> dict[str, Any]:
    kwargs = dict(record.init_kwargs)
    block = dict(kwargs.pop("block_kwargs", None) or {})
    mapping = dict(kwargs.pop("mapping_kwargs", None) or {})
    epilogue = dict(kwargs.pop("epilogue_kwargs", None) or {})
    where = f"{source} D"
    options = read_options(
        kwargs, where,
        rename={
            "img_resolution": ("resolution", MISSING), "c_dim": ("c_dim", 0), "img_channels": ("img_channels", 3),
            "channel_base": ("channel_base", 32768), "channel_max": ("channel_max", 512),
            "conv_clamp": ("conv_clamp", None), "cmap_dim": ("cmap_dim", None),
        },
        ignored=frozenset({"num_fp16_res"}),
        required={"architecture": "resnet"},
    )
    options.update(read_options(
        block, f"{where} block_kwargs", rename={"resample_filter": ("resample_filter", DEFAULT_FILTER)},
        ignored=frozenset({"fp16_channels_last", "freeze_layers"}), required={"activation": "lrelu"},
    ))
    options.update(read_options(
        mapping, f"{where} mapping_kwargs", rename={"num_layers": ("mapping_layers", 8)},
        required={"activation": "lrelu", "lr_multiplier": 0.01, "embed_features": None, "layer_features": None},
    ))
    options.update(read_options(
        epilogue, f"{where} epilogue_kwargs",
        rename={"mbstd_group_size": ("mbstd_group_size", 4), "mbstd_num_channels": ("mbstd_num_channels", 1)},
        required={"activation": "lrelu"},
    ))
    if options["mbstd_group_size"] is None:
        raise ConversionError(f"{where}: mbstd_group_size None (whole-batch groups) is not supported")
    return options


def record_or_error(data: dict[str, Any], key: str, path: Path) -> PersistentRecord:
    record = data.get(key)
    if not isinstance(record, PersistentRecord):
        raise ConversionError(f"{path}: no network {key!r} in this pickle (keys: {', '.join(map(str, data))})")
    return record


def is_stylegan3_generator(record: PersistentRecord) -> bool:
    synthesis = record.child("synthesis")
    return synthesis is not None and bool(synthesis.children_of_class("SynthesisInput"))


class NvlabsStyleGAN2Converter(Converter):
    """NVlabs StyleGAN2 network pickle (.pkl with G_ema and optionally D) -> stylegan2 generator and discriminator."""

    description = "NVlabs StyleGAN2 .pkl (stylegan2-ada-pytorch, stylegan3 repo 'stylegan2' config): G_ema and D"

    def detect(self, path: Path) -> bool:
        return looks_like_nvlabs_pickle(path, b"G_ema") and not looks_like_nvlabs_pickle(path, b"SynthesisInput")

    def read(self, path: Path) -> list[ComponentSource]:
        data = load_nvlabs_pickle(path)
        name, generator = pick_generator(data, path)
        if is_stylegan3_generator(generator):
            raise ConversionError(f"{path}: holds a StyleGAN3 generator; use --format nvlabs-stylegan3")
        check_generator_layout(generator, f"{path} {name}")
        options = generator_options(generator, str(path))
        used = {name}
        if isinstance(data.get("D"), PersistentRecord):
            used.add("D")
        sources = [ComponentSource(
            "generator", "generator", "stylegan2", options, generator.state_dict(),
            generator_table(options["resample_filter"]),
            notes={"network": name, "not_converted": not_converted(data, used)},
        )]
        if "D" in used:
            sources.append(self.discriminator_source(data["D"], path))
        return sources

    def discriminator_source(self, record: PersistentRecord, path: Path) -> ComponentSource:
        """The ``discriminator`` component of an NVlabs StyleGAN2 discriminator record (also
        used for the StyleGAN2 discriminators inside StyleGAN3 pickles)."""
        epilogue = discriminator_epilogue(record, f"{path} D")
        options = discriminator_options(record, str(path))
        return ComponentSource(
            "discriminator", "discriminator", "stylegan2", options, record.state_dict(),
            discriminator_table(options["resample_filter"], epilogue), notes={"network": "D"},
        )
