"""The e4e / pSp image encoder: backbone, feature pyramid, map-to-style heads, codes around w_avg.

Axis letters: b batch, l W+ layers, w latent width, c channels, h/w height/width.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F

from styletalker_core.errors import OptionValueError
from styletalker_core.interfaces.image_encoder import ImageEncoder
from styletalker_core.registry import ComponentOf, ComponentSpec
from styletalker_e4e.heads import MapToStyle, upsample_add


class E4EEncoder(ImageEncoder):
    """e4e / pSp encoder (Tov et al. 2021; Richardson et al. 2021): images -> W+ codes = w_avg + offsets.

    Layers 0..coarse_layers-1 read the coarsest features (c3), the next ``medium_layers`` the
    pyramid level p2 = c3 upsampled + lateral(c2), the rest the finest level p1 = p2 upsampled
    + lateral(c1), as in pSp. With ``progressive=True`` (e4e) head 0 predicts one code w0 for
    every layer and head i > 0 adds a delta to layer i; only the first ``progressive_stage``
    deltas are active (e4e's progressive training; a stage >= num_ws - 1 means all). With
    ``progressive=False`` (pSp) every head predicts its layer's offset independently.

    Sizes are options so that a small encoder trains on a CPU; the defaults are the published
    IR-SE-50 at 256 px for 18 layers of 512. ``head_channels`` sets the width of the heads'
    convolutions (0: w_dim, as published). Inputs of another size are resized to ``resolution``.
    ``domain`` names the training domain for the out-of-domain warning. ``backbone`` names a
    registered ``image_encoder_backbone`` (``ir``, ``ir_se``, ``resnet`` built in), which is given
    those of ``stem_channels``, ``channels``, ``units`` and ``se_reduction`` it declares.
    """

    progressive_stage: torch.Tensor  # buffer (latent_avg: ImageEncoder's)

    def __init__(
        self,
        resolution: int = 256,
        num_ws: int = 18,
        w_dim: int = 512,
        backbone: Annotated[ComponentSpec, ComponentOf("image_encoder_backbone", by_name=True)] = ComponentSpec("ir_se"),
        stem_channels: int = 64,
        channels: tuple[int, ...] = (64, 128, 256, 512),
        units: tuple[int, ...] = (3, 4, 14, 3),
        se_reduction: int = 16,
        coarse_layers: int = 3,
        medium_layers: int = 4,
        progressive: bool = True,
        head_channels: int = 0,
        domain: str = "",
    ) -> None:
        super().__init__()
        channels, units = tuple(channels), tuple(units)
        self.resolution, self.num_ws, self.w_dim = resolution, num_ws, w_dim
        self.domain = domain
        self.progressive = progressive
        self.coarse_layers = min(coarse_layers, num_ws)
        self.medium_end = min(coarse_layers + medium_layers, num_ws)
        # a registered image_encoder_backbone, given the sizes it declares of these (the recipe names it: backbone = "ir_se")
        self.backbone = backbone.build(stem_channels=stem_channels, channels=channels, units=units,
                                       se_reduction=se_reduction)
        fine, middle, coarse = self.backbone.out_channels
        strides = self.backbone.strides
        if any(stride & (stride - 1) for stride in strides) or strides[1] != 2 * strides[0] or strides[2] != 2 * strides[1]:
            raise OptionValueError("backbone", backbone.name, f"has strides {strides}: powers of two, each twice the previous")
        # the pyramid levels have the sizes of c3, c2 (p2 = c3 upsampled + c2) and c1 (p1)
        sizes = {"c3": max(1, resolution // strides[2]), "p2": max(1, resolution // strides[1]),
                 "p1": max(1, resolution // strides[0])}
        self.styles = torch.nn.ModuleList()
        for layer in range(num_ws):
            level = self._level(layer)
            self.styles.append(MapToStyle(coarse, w_dim, sizes[level], head_channels))
        self.latlayer1 = torch.nn.Conv2d(middle, coarse, kernel_size=1)
        self.latlayer2 = torch.nn.Conv2d(fine, coarse, kernel_size=1)
        self.register_buffer("latent_avg", torch.zeros(num_ws, w_dim))
        self.register_buffer("progressive_stage", torch.tensor(num_ws, dtype=torch.long))

    def _level(self, layer: int) -> str:
        if layer < self.coarse_layers:
            return "c3"
        return "p2" if layer < self.medium_end else "p1"

    def set_progressive_stage(self, stage: int) -> None:
        """e4e: deltas of layers 1..stage are active (0: one code for every layer; >= num_ws - 1: all)."""
        self.progressive_stage.fill_(int(max(0, min(stage, self.num_ws))))

    def active_layers(self) -> int:
        """How many layers have their own code: 1 + active deltas (num_ws for pSp or a finished e4e)."""
        if not self.progressive:
            return self.num_ws
        return min(int(self.progressive_stage) + 1, self.num_ws)

    def offsets(self, images: torch.Tensor) -> torch.Tensor:
        """images [b, 3, h, w] in [-1, 1] -> offsets from latent_avg [b, l, w]."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"e4e encoder expects images [b, 3, h, w], got {tuple(images.shape)}")
        if images.shape[-2:] != (self.resolution, self.resolution):
            images = F.interpolate(images, size=(self.resolution, self.resolution), mode="bilinear",
                                   align_corners=False, antialias=True)
        c1, c2, c3 = self.backbone(images)
        pyramid: dict[str, torch.Tensor] = {"c3": c3}

        def level(name: str) -> torch.Tensor:
            if name not in pyramid:
                if name == "p2":
                    pyramid["p2"] = upsample_add(c3, self.latlayer1(c2))
                else:
                    pyramid["p1"] = upsample_add(level("p2"), self.latlayer2(c1))
            return pyramid[name]

        if not self.progressive:
            return torch.stack([head(level(self._level(i))) for i, head in enumerate(self.styles)], dim=1)
        w0 = self.styles[0](c3)
        codes = [w0] * self.num_ws
        for layer in range(1, self.active_layers()):
            codes[layer] = w0 + self.styles[layer](level(self._level(layer)))
        return torch.stack(codes, dim=1)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.offsets(images) + self.latent_avg
