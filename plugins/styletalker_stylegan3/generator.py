"""The StyleGAN3 generator (Karras et al. 2021, "Alias-Free Generative Adversarial Networks"),
configs T (translation equivariant) and R (also rotation equivariant), as in NVlabs stylegan3."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import nn

from styletalker_core.nn import MappingNetwork
from styletalker_core.nn.style_generator import StyleGenerator, compute_dtype, memory_format
from styletalker_stylegan3.layers import SynthesisInput, SynthesisLayer, layer_schedule


class StyleGAN3Generator(StyleGenerator):
    """StyleGAN3: z [b, z_dim] -> w [b, num_ws, w_dim] -> images [b, c, r, r]; num_ws = num_layers + 2.

    ``config`` 't' uses 3x3 convolutions and separable Kaiser filters; 'r' uses 1x1
    convolutions and radially symmetric down-sampling filters (NVlabs also doubles
    channel_base and channel_max for R: pass the doubled values). The layer schedule
    (``num_layers``, ``num_critical``, ``first_cutoff``, ``first_stopband``,
    ``last_stopband_rel``, ``margin_size``) and ``filter_size``, ``lrelu_upsampling``,
    ``output_scale``, ``conv_clamp``, ``magnitude_ema_beta`` follow the paper's defaults.
    StyleGAN3 has no noise inputs: ``noise_mode`` is accepted and has no effect.
    Speed options as for StyleGAN2: ``modconv_mode``, ``dtype``, ``channels_last``.

    State dict: ``mapping_network.*`` and ``synthesis_network.{input, L{i}_{size}_{channels}}.*``
    with NVlabs' names below those prefixes.
    """

    def __init__(
        self,
        resolution: int = 256,
        config: Literal["t", "r"] = "t",
        z_dim: int = 512,
        w_dim: int = 512,
        c_dim: int = 0,
        img_channels: int = 3,
        channel_base: int = 32768,
        channel_max: int = 512,
        mapping_layers: int = 2,
        mapping_lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.998,
        num_layers: int = 14,
        num_critical: int = 2,
        first_cutoff: float = 2.0,
        first_stopband: float = 2 ** 2.1,
        last_stopband_rel: float = 2 ** 0.3,
        margin_size: int = 10,
        output_scale: float = 0.25,
        filter_size: int = 6,
        lrelu_upsampling: int = 2,
        conv_clamp: float | None = 256,
        magnitude_ema_beta: float = 0.999,
        modconv_mode: Literal["auto", "grouped", "activation"] = "auto",
        dtype: Literal["float32", "bfloat16", "float16"] = "float32",
        channels_last: bool | None = None,
    ) -> None:
        super().__init__()
        if resolution < 16 or resolution > 4096 or resolution & (resolution - 1):
            raise ValueError(f"stylegan3 generator: resolution must be a power of two from 16 to 4096, got {resolution}")
        if config not in ("t", "r"):
            raise ValueError(f"stylegan3 generator: config {config!r}; use 't' or 'r'")
        self.resolution = resolution
        self.config = config
        self.z_dim = z_dim
        self.w_dim = w_dim
        self.c_dim = c_dim
        self.img_channels = img_channels
        self.output_scale = output_scale
        self.compute_dtype = compute_dtype(dtype, "stylegan3 generator")
        self.channels_last = channels_last
        self.num_ws = num_layers + 2
        s = layer_schedule(resolution, img_channels, channel_base, channel_max, num_layers, num_critical,
                           first_cutoff, first_stopband, last_stopband_rel, margin_size)
        synthesis: Any = nn.Module()  # holds input and the layers under NVlabs' names
        synthesis.input = SynthesisInput(w_dim, int(s["channels"][0]), int(s["sizes"][0]),
                                         s["sampling_rates"][0], s["cutoffs"][0])
        self.layer_names = []
        for index in range(num_layers + 1):
            prev = max(index - 1, 0)
            layer = SynthesisLayer(
                w_dim=w_dim, is_torgb=(index == num_layers), is_critically_sampled=(index >= num_layers - num_critical),
                in_channels=int(s["channels"][prev]), out_channels=int(s["channels"][index]),
                in_size=int(s["sizes"][prev]), out_size=int(s["sizes"][index]),
                in_sampling_rate=int(s["sampling_rates"][prev]), out_sampling_rate=int(s["sampling_rates"][index]),
                in_cutoff=float(s["cutoffs"][prev]), out_cutoff=float(s["cutoffs"][index]),
                in_half_width=float(s["half_widths"][prev]), out_half_width=float(s["half_widths"][index]),
                conv_kernel=3 if config == "t" else 1, filter_size=filter_size, lrelu_upsampling=lrelu_upsampling,
                use_radial_filters=(config == "r"), conv_clamp=conv_clamp, magnitude_ema_beta=magnitude_ema_beta,
                modconv_mode=modconv_mode,
            )
            name = f"L{index}_{layer.out_size}_{layer.out_channels}"
            setattr(synthesis, name, layer)
            self.layer_names.append(name)
        self.synthesis_network = synthesis
        self.mapping_network = MappingNetwork(
            z_dim, c_dim, w_dim, self.num_ws, num_layers=mapping_layers, lr_multiplier=mapping_lr_multiplier,
            w_avg_beta=w_avg_beta,
        )

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "const", update_emas: bool = False) -> torch.Tensor:
        self.check_synthesis_inputs(ws, noise_mode)
        per_layer = ws.to(torch.float32).unbind(dim=1)
        x = self.synthesis_network.input(per_layer[0])
        x = x.to(dtype=self.compute_dtype, memory_format=memory_format(self.channels_last, x.shape[0]))
        for name, w in zip(self.layer_names, per_layer[1:]):
            x = getattr(self.synthesis_network, name)(x, w, update_emas=update_emas)
        x = x.to(torch.float32, memory_format=torch.contiguous_format)
        return x * self.output_scale if self.output_scale != 1 else x

    def set_input_transform(self, matrix: torch.Tensor) -> None:
        """Set the user transform [3, 3] of the Fourier-feature input: its inverse moves the image
        (for example ``[[cos, sin, 0], [-sin, cos, 0], [0, 0, 1]]`` rotates it by the angle)."""
        with torch.no_grad():
            self.synthesis_network.input.transform.copy_(matrix.to(self.synthesis_network.input.transform))


def rotation_transform(angle: float) -> torch.Tensor:
    """[3, 3] input transform that rotates the generated image by ``angle`` radians."""
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
