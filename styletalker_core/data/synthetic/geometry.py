"""From identity factors to the physical face: sizes, positions and colours (torch, batched).

Units: the image spans [-1, 1] horizontally and vertically (y up); head space is the
rotating frame of the head, centred on the head ellipsoid, with u = x (right), v = y (up),
z towards the camera in the neutral pose. Every entry of :class:`FaceGeometry` is a
tensor [b] (or [b, 3] for colours) for a batch of b identities.
"""

from __future__ import annotations

import attrs
import torch

from styletalker_core.data.synthetic.identity import IDENTITY_FACTORS

# Image height of the eyes in the neutral pose (FFHQ-like alignment: eyes a little above centre).
EYE_Y = 0.08
# Head-space height of the eyes above the head centre.
EYE_V = 0.07
_SKIN_STOPS = torch.tensor(
    [[0.98, 0.84, 0.74], [0.88, 0.67, 0.53], [0.66, 0.46, 0.33], [0.40, 0.27, 0.19]]
)


def lerp(low: float, high: float, fraction: torch.Tensor) -> torch.Tensor:
    return low + (high - low) * fraction


def hsv_to_rgb(hue: torch.Tensor, saturation: torch.Tensor | float, value: torch.Tensor | float) -> torch.Tensor:
    """Hue, saturation, value [b] (hue in turns) -> RGB [b, 3] in [0, 1] (smooth in every input)."""
    hue = hue[..., None]
    k = torch.remainder(torch.tensor([5.0, 3.0, 1.0]) + hue * 6.0, 6.0)
    ramp = torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)
    saturation = torch.as_tensor(saturation)[..., None] if torch.is_tensor(saturation) else saturation
    value = torch.as_tensor(value)[..., None] if torch.is_tensor(value) else value
    return value * (1.0 - saturation * ramp)


def skin_colour(tone: torch.Tensor) -> torch.Tensor:
    """Skin tone [b] in [0, 1] -> RGB [b, 3], piecewise linear through a light-to-dark palette."""
    position = tone.clamp(0, 1) * (len(_SKIN_STOPS) - 1)
    index = position.floor().clamp(max=len(_SKIN_STOPS) - 2).long()
    fraction = (position - index)[..., None]
    return _SKIN_STOPS[index] * (1 - fraction) + _SKIN_STOPS[index + 1] * fraction


@attrs.frozen
class FaceGeometry:
    """Physical parameters of b identities (see the module docstring for units)."""

    head_radii: torch.Tensor  # [b, 3] rx, ry, rz
    head_centre_y: torch.Tensor  # [b] image y of the head centre
    skin: torch.Tensor  # [b, 3]
    hair: torch.Tensor  # [b, 3]
    hairline: torch.Tensor  # [b] head-space v of the front hairline
    background: torch.Tensor  # [b, 3]
    clothing: torch.Tensor  # [b, 3]
    eye_spacing: torch.Tensor  # [b] half the distance between eye centres
    eye_width: torch.Tensor  # [b] half-width of an eye
    eye_height: torch.Tensor  # [b] half-height of an open eye
    iris: torch.Tensor  # [b, 3]
    nose_length: torch.Tensor  # [b]
    nose_width: torch.Tensor  # [b] half-width
    mouth_v: torch.Tensor  # [b] head-space v of the lips' meeting line at rest
    mouth_half_width: torch.Tensor  # [b] at mouth width 0.5
    lips: torch.Tensor  # [b, 3]
    brow_arch: torch.Tensor  # [b]
    brow_thickness: torch.Tensor  # [b]
    brow_gap: torch.Tensor  # [b] from the top of the eye to the brow centre line

    @classmethod
    def from_identity(cls, identity: torch.Tensor) -> FaceGeometry:
        """identity [b, IDENTITY_DIM] in [0, 1] -> geometry of b faces."""
        f = {name: identity[:, i] for i, name in enumerate(IDENTITY_FACTORS)}
        rx = lerp(0.50, 0.60, f["head_width"])
        ry = lerp(0.64, 0.76, f["head_height"])
        radii = torch.stack([rx, ry, rx * 1.05], dim=-1)
        skin = skin_colour(f["skin_tone"])
        nose_length = lerp(0.11, 0.19, f["nose_length"])
        nose_tip = EYE_V - 0.03 - nose_length
        mouth_v = torch.minimum(lerp(-0.25, -0.34, f["mouth_height"]), nose_tip - 0.09)
        red = torch.tensor([0.78, 0.22, 0.28])
        redness = lerp(0.25, 0.9, f["lip_redness"])[:, None]
        return cls(
            head_radii=radii,
            head_centre_y=torch.full_like(rx, EYE_Y - EYE_V),
            skin=skin,
            hair=hsv_to_rgb(lerp(0.0, 0.13, f["hair_hue"]), 0.6, lerp(0.10, 0.80, f["hair_lightness"])),
            hairline=lerp(0.30, 0.44, f["hairline"]),
            background=hsv_to_rgb(lerp(0.0, 0.85, f["background_hue"]), 0.35, lerp(0.35, 0.92, f["background_lightness"])),
            clothing=hsv_to_rgb(lerp(0.0, 0.85, f["clothing_hue"]), 0.55, 0.6),
            eye_spacing=lerp(0.17, 0.24, f["eye_spacing"]),
            eye_width=lerp(0.085, 0.115, f["eye_size"]),
            eye_height=lerp(0.085, 0.115, f["eye_size"]) * 0.58,
            iris=hsv_to_rgb(lerp(0.05, 0.58, f["iris_hue"]), 0.65, 0.5),
            nose_length=nose_length,
            nose_width=lerp(0.045, 0.08, f["nose_width"]),
            mouth_v=mouth_v,
            mouth_half_width=lerp(0.11, 0.15, f["mouth_size"]),
            lips=skin * 0.85 * (1 - redness) + red * redness,
            brow_arch=lerp(0.0, 0.045, f["brow_arch"]),
            brow_thickness=lerp(0.02, 0.04, f["brow_thickness"]),
            brow_gap=lerp(0.035, 0.085, f["brow_height"]),
        )
