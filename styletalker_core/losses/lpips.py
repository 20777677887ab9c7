"""LPIPS (Zhang et al. 2018) with a VGG16 feature network defined here (torchvision is not needed).

The user supplies the weights as one local safetensors file. Accepted key layouts:

- torchvision's VGG16 ``features.<i>.weight/bias`` (i the index in ``vgg16().features``) and
  ``lin<k>.weight`` [1, c_k, 1, 1] for the five linear calibration layers;
- the ``lpips`` package's full model state: ``net.slice<j>.<i>.weight/bias`` (same i) and
  ``lin<k>.model.1.weight``; ``scaling_layer.*`` (constants, defined here) and torchvision's ``classifier.*`` are ignored.

No weights are downloaded; without a file, recipes use MS-SSIM instead (see perceptual.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from styletalker_core.checkpoint import require_safetensors
from styletalker_core.errors import CheckpointError

# torchvision vgg16().features: conv layer index -> (in, out); max-pool before indices 4, 9, 16, 23.
VGG16_CONVS = {0: (3, 64), 2: (64, 64), 5: (64, 128), 7: (128, 128), 10: (128, 256), 12: (256, 256),
               14: (256, 256), 17: (256, 512), 19: (512, 512), 21: (512, 512), 24: (512, 512),
               26: (512, 512), 28: (512, 512)}
VGG16_POOLS = (4, 9, 16, 23)
TAPS = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
TAP_CHANNELS = (64, 128, 256, 512, 512)
# LPIPS' input scaling for images in [-1, 1].
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


class VGG16Features(nn.Module):
    """VGG16 convolutional trunk up to relu5_3: images [b, 3, h, w] -> five feature maps."""

    def __init__(self) -> None:
        super().__init__()
        layers: dict[str, nn.Module] = {}
        for index in range(TAPS[-1] + 1):
            if index in VGG16_CONVS:
                layers[str(index)] = nn.Conv2d(*VGG16_CONVS[index], kernel_size=3, padding=1)
            elif index in VGG16_POOLS:
                layers[str(index)] = nn.MaxPool2d(2, 2)
            else:
                layers[str(index)] = nn.ReLU(inplace=False)
        self.features = nn.Sequential()
        for name, layer in layers.items():
            self.features.add_module(name, layer)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in TAPS:
                taps.append(x)
        return taps


def _unit_normalise(features: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


class LPIPS(nn.Module):
    """Learned perceptual distance: forward(x, y) with x, y [b, 3, h, w] in [-1, 1] -> [b].

    Build, then ``load_weights(path)``; the network is frozen (no parameter requires grad).
    """

    shift: torch.Tensor  # buffers [1, 3, 1, 1]: the input normalisation
    scale: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.net = VGG16Features()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in TAP_CHANNELS)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)

    def load_weights(self, path: str | Path) -> None:
        """Load VGG16 + linear-layer weights from a safetensors file (layouts in the module docstring)."""
        path = require_safetensors(path)
        state = normalise_lpips_keys(load_file(str(path)), str(path))
        own = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        own.update({f"lins.{k}": v for k, v in self.lins.state_dict().items()})
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise CheckpointError(
                f"{path}: not LPIPS-VGG16 weights (missing {', '.join(missing[:6]) or 'nothing'}; "
                f"unexpected {', '.join(unexpected[:6]) or 'nothing'}); see styletalker_core/losses/lpips.py for the layout"
            )
        for key, value in state.items():
            if value.shape != own[key].shape:
                raise CheckpointError(f"{path}: {key} has shape {tuple(value.shape)}, LPIPS-VGG16 needs {tuple(own[key].shape)}")
        self.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)

    def layer_distances(self, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """The five per-layer terms [b] each; their sum is the LPIPS distance."""
        x, y = resize_for_lpips(x), resize_for_lpips(y)
        both = (torch.cat([x, y]) - self.shift) / self.scale
        terms = []
        for features, lin in zip(self.net(both), self.lins):
            fx, fy = _unit_normalise(features).chunk(2)
            terms.append(lin((fx - fy) ** 2).mean(dim=(1, 2, 3)))
        return terms

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.stack(self.layer_distances(x, y)).sum(dim=0)


_SLICE = re.compile(r"^net\.slice\d\.(\d+)\.(weight|bias)$")
_FEATURE = re.compile(r"^features\.(\d+)\.(weight|bias)$")
_LIN = re.compile(r"^lin(\d)(?:\.model\.1)?\.weight$")


def normalise_lpips_keys(state: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """Map either accepted key layout onto this module's keys (``net.features.<i>.*``, ``lins.<k>.weight``)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith(("scaling_layer.", "classifier.")):
            continue
        match = _SLICE.match(key) or _FEATURE.match(key)
        if match:
            out[f"net.features.{match.group(1)}.{match.group(2)}"] = value
            continue
        match = _LIN.match(key)
        if match:
            out[f"lins.{match.group(1)}.weight"] = value
            continue
        raise CheckpointError(f"{source}: unexpected key {key!r} in LPIPS weights; see styletalker_core/losses/lpips.py")
    return out


def resize_for_lpips(x: torch.Tensor, minimum: int = 32) -> torch.Tensor:
    """Upsample images smaller than ``minimum`` px (VGG's five poolings need at least 32 px) -> [b, 3, >=32, >=32]."""
    size = min(x.shape[-2:])
    if size >= minimum:
        return x
    factor = -(-minimum // size)
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
