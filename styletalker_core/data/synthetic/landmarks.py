"""68-point facial landmarks of synthetic faces, projected from the renderer's geometry.

The points follow the iBUG 300-W numbering that dlib's predictor uses for real faces (jaw
0-16, brows 17-26, nose 27-35, eyes 36-47, outer lips 48-59, inner lips 60-67; "left" and
"right" in image terms), so code written for real clips (mouth regions, LMD, eye aspect
ratio) works unchanged on synthetic ones. Each point is placed in head space on the painted
feature it names (eyelid edge, lip contour, ...), lifted onto the head ellipsoid and projected
with the same orthographic camera as the renderer: points follow pose, blinks and the mouth
exactly. Occluded points are not hidden (dlib's predictor places them too).
Axis letters: b frames, p points.
"""

from __future__ import annotations

import math

import torch

from styletalker_core.data.synthetic.geometry import EYE_V, FaceGeometry
from styletalker_core.data.synthetic.renderer import FIELD, LIP_THICKNESS, MAX_OPENING, rotation_matrices

NUM_LANDMARKS = 68


def _eye(g: FaceGeometry, side: float, openness: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Six eye points, image-left corner first, then the upper lid and the lower lid back.

    (That is iBUG's order for both eyes: 36-41 and 42-47.)"""
    ew, eh = g.eye_width, g.eye_height
    centre_u = side * g.eye_spacing
    third = math.sqrt(1 - 1 / 9)  # the lid arc at a third of the half-width
    upper = EYE_V + eh * (2 * openness - 1) * third
    lower = EYE_V - eh * third
    corner = torch.full_like(ew, EYE_V)
    return [(centre_u - ew, corner), (centre_u - ew / 3, upper), (centre_u + ew / 3, upper),
            (centre_u + ew, corner), (centre_u + ew / 3, lower), (centre_u - ew / 3, lower)]


def _brow(g: FaceGeometry, side: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Five points along one eyebrow's centre line, image-left to image-right."""
    half_length = g.eye_width * 1.3
    points = []
    for t in torch.linspace(-1, 1, 5).tolist():
        v = EYE_V + g.eye_height + g.brow_gap + g.brow_arch * (1 - t * t) - 0.012 * side * t
        points.append((side * g.eye_spacing + t * half_length, v))
    return points


def _ellipse_points(centre_v: torch.Tensor, half_width: torch.Tensor, half_height: torch.Tensor,
                    fractions: list[float]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Points of the ellipse (0, centre_v) at horizontal positions ``fractions`` of the half-width;
    a fraction f in [-1, 1] on the upper arc, f + 4 (in [3, 5]) on the lower arc."""
    points = []
    for f in fractions:
        lower = f > 2
        x = f - 4 if lower else f
        rise = half_height * math.sqrt(max(1 - x * x, 0.0))
        points.append((half_width * x, centre_v - rise if lower else centre_v + rise))
    return points


def _mouth(g: FaceGeometry, mouth_open: torch.Tensor, mouth_width: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Outer lip contour (12 points, 48-59) then inner contour (8 points, 60-67), as painted."""
    opening = mouth_open.clamp(0, 1) * MAX_OPENING
    half_width = g.mouth_half_width * (0.75 + 0.5 * mouth_width.clamp(0, 1))
    centre = g.mouth_v - opening / 2
    outer = _ellipse_points(centre, half_width, opening / 2 + LIP_THICKNESS,
                            [-1.0, -0.6, -0.25, 0.0, 0.25, 0.6, 1.0, 4.6, 4.25, 4.0, 3.75, 3.4])
    inner = _ellipse_points(centre, half_width * 0.86, opening / 2 + 0.009,
                            [-1.0, -0.5, 0.0, 0.5, 1.0, 4.5, 4.0, 3.5])
    return outer + inner


def _jaw(g: FaceGeometry) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """17 points from the image-left side of the head at ear height, round the chin, to the right."""
    rx, ry = g.head_radii[:, 0], g.head_radii[:, 1]
    top = EYE_V - 0.08
    points = []
    for angle in torch.linspace(-math.pi / 2, math.pi / 2, 17).tolist():
        u = 0.97 * rx * math.sin(angle)
        v = top + (-0.95 * ry - top) * math.cos(angle)
        points.append((u, v))
    return points


def _nose(g: FaceGeometry) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
    """Bridge (27-30, top to tip) and nostril line (31-35, image-left to right), with the height
    of the nose above the head surface (the renderer's nose ellipsoid sticks out 0.035)."""
    tip = EYE_V - 0.03 - g.nose_length
    bridge = [(torch.zeros_like(tip), EYE_V - 0.03 - g.nose_length * k / 3, 0.035 * k / 3) for k in range(4)]
    nostrils = [(g.nose_width * f, tip + 0.01 * (1 - abs(f)), 0.02 * (1 - abs(f))) for f in (-1.0, -0.5, 0.0, 0.5, 1.0)]
    return bridge + nostrils


def synthetic_landmarks(identity: torch.Tensor, pose: torch.Tensor, eye_open: torch.Tensor,
                        mouth_open: torch.Tensor, mouth_width: torch.Tensor, resolution: int) -> torch.Tensor:
    """68 landmarks of b rendered frames, in the inputs' conventions of ``render_faces``.

    identity [b, IDENTITY_DIM] (or [IDENTITY_DIM]); pose [b, 3] degrees; eye_open, mouth_open,
    mouth_width [b] -> [b, 68, 2] (x, y) pixel positions in the frame of ``resolution`` pixels
    (pixel centres at integers, as for dlib's landmarks of real crops).
    """
    b = pose.shape[0]
    if identity.dim() == 1:
        identity = identity[None].expand(b, -1)
    g = FaceGeometry.from_identity(identity.float())
    eye_open, mouth_open, mouth_width = eye_open.float(), mouth_open.float(), mouth_width.float()
    flat = (_jaw(g) + _brow(g, -1.0) + _brow(g, 1.0))
    flat_after_nose = _eye(g, -1.0, eye_open.clamp(0, 1)) + _eye(g, 1.0, eye_open.clamp(0, 1)) + _mouth(g, mouth_open, mouth_width)
    zeros = torch.zeros(b)
    raised = [(u, v, zeros) for u, v in flat] + [(u, v, h) for u, v, h in _nose(g)] + [(u, v, zeros) for u, v in flat_after_nose]
    u = torch.stack([torch.as_tensor(p[0]).expand(b) for p in raised], dim=1)  # [b, p]
    v = torch.stack([torch.as_tensor(p[1]).expand(b) for p in raised], dim=1)
    height = torch.stack([torch.as_tensor(p[2]).expand(b) for p in raised], dim=1)
    rx, ry, rz = (g.head_radii[:, i, None] for i in range(3))
    z = rz * torch.sqrt((1 - (u / rx) ** 2 - (v / ry) ** 2).clamp(min=0)) + height
    head_points = torch.stack([u, v, z], dim=-1)  # [b, p, 3]
    world = torch.einsum("bij,bpj->bpi", rotation_matrices(pose.float()), head_points)
    x_image = world[..., 0]
    y_image = world[..., 1] + g.head_centre_y[:, None]
    column = (x_image / FIELD + 1) / 2 * resolution - 0.5
    row = (1 - y_image / FIELD) / 2 * resolution - 0.5
    return torch.stack([column, row], dim=-1)
