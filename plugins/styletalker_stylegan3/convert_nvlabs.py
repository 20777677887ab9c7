"""Converter ``nvlabs-stylegan3``: NVlabs StyleGAN3 network pickles (configs T and R) ->
stylegan3 generator; the pickle's discriminator (a StyleGAN2 one) goes through the
``nvlabs-stylegan2`` converter (a nested component: option ``discriminator``).

Options come from the recorded ``_init_kwargs`` of G_ema; our parameter and buffer names
equal NVlabs' below ``mapping_network.`` and ``synthesis_network.`` (the designed filters
are carried over as stored). The generator is recognised by class names and attribute tree:
``Generator`` with ``mapping`` (``MappingNetwork``) and ``synthesis`` (``SynthesisNetwork``:
``input``, a ``SynthesisInput``, then ``SynthesisLayer`` objects named ``L{i}_{size}_{channels}``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

from styletalker_core.checkpoint.convert import ConversionError, KeyTable, Rename
from styletalker_core.checkpoint.nvlabs_pickle import (
    PersistentRecord,
    check_classes,
    load_nvlabs_pickle,
    looks_like_nvlabs_pickle,
    not_converted,
    pick_generator,
)
from styletalker_core.errors import RegistryError
from styletalker_core.interfaces import ComponentSource, Converter
from styletalker_core.registry import ComponentOf, ComponentSpec

logger = logging.getLogger(__name__)

GENERATOR_TABLE = KeyTable([
    Rename("mapping.{rest}", "mapping_network.{rest}"),
    Rename("synthesis.{rest}", "synthesis_network.{rest}"),
])

SYNTHESIS_OPTIONS = {
    "channel_base": 32768, "channel_max": 512, "num_layers": 14, "num_critical": 2, "first_cutoff": 2.0,
    "first_stopband": 2 ** 2.1, "last_stopband_rel": 2 ** 0.3, "margin_size": 10, "output_scale": 0.25,
    "filter_size": 6, "lrelu_upsampling": 2, "conv_clamp": 256, "magnitude_ema_beta": 0.999,
}
IGNORED = frozenset({"num_fp16_res"})


def generator_options(record: PersistentRecord, source: str) -> dict[str, Any]:
    kwargs = dict(record.init_kwargs)
    kwargs.update(kwargs.pop("synthesis_kwargs", None) or {})
    mapping = dict(kwargs.pop("mapping_kwargs", None) or {})
    where = f"{source} G_ema"
    conv_kernel = kwargs.pop("conv_kernel", 3)
    radial = bool(kwargs.pop("use_radial_filters", False))
    if (conv_kernel, radial) not in ((3, False), (1, True)):
        raise ConversionError(
            f"{where}: conv_kernel={conv_kernel} with use_radial_filters={radial} is neither config T (3, False) "
            "nor config R (1, True)"
        )
    options: dict[str, Any] = {"config": "t" if conv_kernel == 3 else "r"}
    required = {"img_resolution", "z_dim", "w_dim"}
    missing = sorted(required - set(kwargs))
    if missing:
        raise ConversionError(f"{where}: {', '.join(missing)} not recorded")
    names = {"img_resolution": "resolution", "z_dim": "z_dim", "w_dim": "w_dim", "c_dim": "c_dim",
             "img_channels": "img_channels"}
    options.update({"c_dim": 0, "img_channels": 3})
    unknown = []
    for key, value in kwargs.items():
        if key in names:
            options[names[key]] = value
        elif key in SYNTHESIS_OPTIONS:
            options[key] = float(value) if isinstance(SYNTHESIS_OPTIONS[key], float) else value
        elif key not in IGNORED:
            unknown.append(f"{key}={value!r}")
    for key, value in mapping.items():
        if key == "num_layers":
            options["mapping_layers"] = value
        elif key == "lr_multiplier":
            options["mapping_lr_multiplier"] = float(value)
        elif key == "w_avg_beta":
            options["w_avg_beta"] = float(value)
        else:
            unknown.append(f"mapping_kwargs.{key}={value!r}")
    if unknown:
        raise ConversionError(f"{where}: unsupported settings " + ", ".join(unknown))
    options.setdefault("mapping_layers", 2)
    return options


def check_generator_layout(record: PersistentRecord, where: str) -> None:
    """G_ema must be NVlabs' StyleGAN3 Generator (class names of the tree, see the module docstring)."""
    expected: dict[str, str] = {
        "": "Generator", "mapping": "MappingNetwork", "synthesis": "SynthesisNetwork",
        "synthesis.input": "SynthesisInput",
    }
    synthesis = record.child("synthesis")
    for name in (synthesis.children() if synthesis is not None else {}):
        if name != "input":
            expected[f"synthesis.{name}"] = "SynthesisLayer"
    check_classes(record, expected, where)


class NvlabsStyleGAN3Converter(Converter):
    """NVlabs StyleGAN3 network pickle (.pkl, configs T and R) -> stylegan3 generator (+ stylegan2 discriminator)."""

    description = "NVlabs StyleGAN3 .pkl (configs T and R): G_ema and D"

    def __init__(
        self,
        discriminator: Annotated[ComponentSpec, ComponentOf("converter")] = ComponentSpec("nvlabs-stylegan2"),
    ) -> None:
        # The pickle's D is a StyleGAN2 discriminator: the converter that reads those reads it,
        # built (when needed) from the registries this converter was built from.
        self.discriminator = discriminator

    def detect(self, path: Path) -> bool:
        return looks_like_nvlabs_pickle(path, b"SynthesisInput")

    def read(self, path: Path) -> list[ComponentSource]:
        data = load_nvlabs_pickle(path)
        name, generator = pick_generator(data, path)
        synthesis = generator.child("synthesis")
        if synthesis is None or not synthesis.children_of_class("SynthesisInput"):
            raise ConversionError(f"{path}: {name} is not a StyleGAN3 generator; use --format nvlabs-stylegan2")
        check_generator_layout(generator, f"{path} {name}")
        used = {name} | ({"D"} if isinstance(data.get("D"), PersistentRecord) else set())
        sources = [ComponentSource(
            "generator", "generator", "stylegan3", generator_options(generator, str(path)),
            generator.state_dict(), GENERATOR_TABLE,
            notes={"network": name, "not_converted": not_converted(data, used)},
        )]
        if "D" in used:
            try:
                converter = self.discriminator.build()
            except RegistryError as error:  # that converter is not installed (or this one was built by hand)
                logger.warning("%s: the discriminator is skipped: %s", path, error)
            else:
                sources.append(converter.discriminator_source(data["D"], path))
        return sources
