"""Renderer of synthetic talking faces: torch, vectorised over frames, anti-aliased.

The head is an ellipsoid seen by an orthographic camera looking along -z. Every pixel casts
a ray; where it meets the rotated head, the hit point is expressed in head space and the
flat features (eyes, eyelids, brows, lips, inner mouth, teeth) are painted there, so a
head turn shifts and foreshortens them as on a real head. The nose, the ears and the hair
are further ellipsoids in head space, combined with the head through a soft depth test, so
they occlude and cast their own silhouettes. Lambertian shading with one soft light.

Anti-aliasing: each shape is an implicit function sampled on the pixel grid; dividing it by
its finite-difference gradient gives a signed distance in pixels, and coverage is a
one-pixel ramp across the edge. Rendering at ``supersample`` times the resolution and
average-pooling smooths what is left. Nothing has texture or noise.

Pose convention (degrees): positive yaw turns the face towards image right, positive pitch
tilts it up, positive roll turns it counter-clockwise in the image.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from styletalker_core.data.synthetic.geometry import EYE_V, FaceGeometry

_LIGHT = torch.tensor([-0.35, 0.55, 1.0]) / math.sqrt(0.35**2 + 0.55**2 + 1.0)
_DEPTH_SOFTNESS = 0.01
# Half-width of the visible field in world units (the frame spans [-FIELD, FIELD]).
FIELD = 0.8  # soft z-test scale, image units
_SCLERA = torch.tensor([0.96, 0.95, 0.92])
_LASH = torch.tensor([0.12, 0.08, 0.07])
_INNER_MOUTH = torch.tensor([0.25, 0.06, 0.08])
_TEETH = torch.tensor([0.96, 0.94, 0.88])
_TONGUE = torch.tensor([0.78, 0.38, 0.40])
# Mouth, in head units: the lower lip drops by mouth_open * MAX_OPENING; lips are LIP_THICKNESS thick.
MAX_OPENING = 0.17
LIP_THICKNESS = 0.03


def rotation_matrices(pose: torch.Tensor) -> torch.Tensor:
    """pose [b, 3] (yaw, pitch, roll) in degrees -> head-to-world rotations [b, 3, 3]."""
    yaw, pitch, roll = torch.deg2rad(pose).unbind(-1)
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)

    def matrix(rows: list[list[torch.Tensor]]) -> torch.Tensor:
        return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)

    ry = matrix([[yaw.cos(), zero, yaw.sin()], [zero, one, zero], [-yaw.sin(), zero, yaw.cos()]])
    p = -pitch  # rotating about x by -pitch lifts the face for positive pitch
    rx = matrix([[one, zero, zero], [zero, p.cos(), -p.sin()], [zero, p.sin(), p.cos()]])
    rz = matrix([[roll.cos(), -roll.sin(), zero], [roll.sin(), roll.cos(), zero], [zero, zero, one]])
    return rz @ rx @ ry


def pixel_distance(field: torch.Tensor) -> torch.Tensor:
    """Implicit function [b, h, w] (negative inside) -> approximate signed distance in pixels."""
    gx = torch.empty_like(field)
    gy = torch.empty_like(field)
    gx[:, :, 1:-1] = (field[:, :, 2:] - field[:, :, :-2]) * 0.5
    gx[:, :, 0] = field[:, :, 1] - field[:, :, 0]
    gx[:, :, -1] = field[:, :, -1] - field[:, :, -2]
    gy[:, 1:-1] = (field[:, 2:] - field[:, :-2]) * 0.5
    gy[:, 0] = field[:, 1] - field[:, 0]
    gy[:, -1] = field[:, -1] - field[:, -2]
    return field * torch.rsqrt(gx * gx + gy * gy + 1e-12)


def coverage(distance: torch.Tensor) -> torch.Tensor:
    """Signed pixel distance -> anti-aliased coverage in [0, 1] (one-pixel ramp)."""
    return torch.clamp(0.5 - distance, 0.0, 1.0)


def _solid(colour: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """colour [3] or [b, 3] -> a flat image [b, 3, h, w] shaped like ``like`` [b, h, w]."""
    b, h, w = like.shape
    return colour.expand(b, 3)[:, :, None, None].expand(b, 3, h, w)


def _mix(base: torch.Tensor, colour: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """base [b, 3, h, w], colour [b, 3] or [b, 3, h, w], alpha [b, h, w]."""
    if colour.dim() == 2:
        colour = colour[:, :, None, None]
    return base + (colour - base) * alpha[:, None]


def _ellipsoid_hit(
    origin: tuple[torch.Tensor, ...], direction: torch.Tensor, centre: torch.Tensor, radii: torch.Tensor
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor]:
    """Front intersection of rays with axis-aligned ellipsoids (in head space).

    origin: 3 components [b, h, w]; direction [b, 3]; centre [b, 3]; radii [b, 3] ->
    (depth [b, h, w] along the ray, hit point as 3 components [b, h, w] relative to
    ``centre``, pixel distance of the silhouette [b, h, w], negative inside).
    """
    o = [(origin[i] - centre[:, i, None, None]) / radii[:, i, None, None] for i in range(3)]
    d = [(direction[:, i] / radii[:, i])[:, None, None] for i in range(3)]
    a = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
    b = 2 * (o[0] * d[0] + o[1] * d[1] + o[2] * d[2])
    c = o[0] * o[0] + o[1] * o[1] + o[2] * o[2] - 1
    disc = b * b - 4 * a * c
    depth = (-b + torch.sqrt(disc.clamp(min=0))) / (2 * a)
    point = tuple((o[i] + depth * d[i]) * radii[:, i, None, None] for i in range(3))
    return depth, point, pixel_distance(-disc / a)


def _shade(point: tuple[torch.Tensor, ...], radii: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """Lambertian shading [b, 1, h, w] of ellipsoid surface points (3 components [b, h, w])."""
    normal = [point[i] / (radii[:, i] ** 2)[:, None, None] for i in range(3)]
    inverse_length = torch.rsqrt(normal[0] ** 2 + normal[1] ** 2 + normal[2] ** 2 + 1e-12)
    light = torch.einsum("bij,i->bj", rotation, _LIGHT)  # the light in head space
    lambert = (normal[0] * light[:, 0, None, None] + normal[1] * light[:, 1, None, None] + normal[2] * light[:, 2, None, None])
    return (0.55 + 0.5 * (lambert * inverse_length).clamp(min=0))[:, None]


def _paint_face(
    geometry: FaceGeometry,
    u: torch.Tensor,
    v: torch.Tensor,
    eye_open: torch.Tensor,
    mouth_open: torch.Tensor,
    mouth_width: torch.Tensor,
) -> torch.Tensor:
    """Colour [b, 3, h, w] of the head surface at head-space coordinates u, v [b, h, w]."""
    g = geometry
    col = lambda x: x[:, None, None]  # noqa: E731  [b] -> [b, 1, 1]
    colour = _solid(g.skin, u)

    # Eyebrows: arched bands above the eyes.
    for side in (-1.0, 1.0):
        du = u - side * col(g.eye_spacing)
        half_length = col(g.eye_width) * 1.3
        t = (du / half_length).clamp(-1, 1)
        centre = col(EYE_V + g.eye_height + g.brow_gap) + col(g.brow_arch) * (1 - t * t) - 0.012 * side * t
        band = torch.maximum(
            pixel_distance((v - centre).abs() - col(g.brow_thickness) / 2),
            pixel_distance(du.abs() - half_length),
        )
        colour = _mix(colour, g.hair * 0.55, coverage(band))

    # Eyes: almond sclera under an eyelid whose edge falls with eye openness; iris, pupil, lashes.
    openness = col(eye_open.clamp(0, 1))
    for side in (-1.0, 1.0):
        du = u - side * col(g.eye_spacing)
        dv = v - EYE_V
        ew, eh = col(g.eye_width), col(g.eye_height)
        ellipse = torch.sqrt((du / ew) ** 2 + (dv / eh) ** 2) - 1
        arc = torch.sqrt((1 - (du / ew) ** 2).clamp(min=0))
        lid = eh * (2 * openness - 1) * arc
        visible = torch.maximum(pixel_distance(ellipse), pixel_distance(dv - lid))
        eye_alpha = coverage(visible)
        iris = coverage(pixel_distance(torch.sqrt(du * du + dv * dv) - eh * 0.85))
        pupil = coverage(pixel_distance(torch.sqrt(du * du + dv * dv) - eh * 0.4))
        eye = _mix(_mix(_solid(_SCLERA, u), g.iris, iris), _LASH.expand_as(g.iris), pupil)
        colour = colour + (eye - colour) * eye_alpha[:, None]
        lash = torch.maximum(
            pixel_distance((dv - lid).abs() - 0.012),
            pixel_distance(du.abs() - ew * 1.08),
        )
        colour = _mix(colour, _LASH.expand_as(g.iris), coverage(lash))

    # Mouth: the upper lip stays, the jaw lowers the lower lip by the opening.
    opening = col(mouth_open.clamp(0, 1)) * MAX_OPENING
    half_width = col(g.mouth_half_width) * (0.75 + 0.5 * col(mouth_width.clamp(0, 1)))
    centre = col(g.mouth_v) - opening / 2
    dv = v - centre
    lips = pixel_distance(torch.sqrt((u / half_width) ** 2 + (dv / (opening / 2 + LIP_THICKNESS)) ** 2) - 1)
    colour = _mix(colour, g.lips, coverage(lips))
    inner_half_height = opening / 2 + 0.009
    inner = coverage(pixel_distance(torch.sqrt((u / (half_width * 0.86)) ** 2 + (dv / inner_half_height) ** 2) - 1))
    teeth = coverage(pixel_distance(opening / 2 - 0.035 - dv))
    tongue = coverage(pixel_distance(dv + opening / 2 - opening * 0.3))
    mouth = _mix(_mix(_solid(_INNER_MOUTH, u), _TEETH.expand_as(g.iris), teeth), _TONGUE.expand_as(g.iris), tongue * (1 - teeth))
    return colour + (mouth - colour) * inner[:, None]


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread inside the block (restored after).

    Vectorised float kernels round the last bit differently depending on how work is split
    over threads, so frames (and clips) are made on one thread for identical bytes whatever
    the caller's setting; the renderer's small chunked operations gain little from threads.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def render_faces(
    identity: torch.Tensor,
    pose: torch.Tensor,
    eye_open: torch.Tensor,
    mouth_open: torch.Tensor,
    mouth_width: torch.Tensor,
    resolution: int = 64,
    supersample: int = 2,
    chunk: int = 8,
) -> torch.Tensor:
    """Render b faces.

    identity [b, IDENTITY_DIM] (or [IDENTITY_DIM] for one identity in every frame) in [0, 1];
    pose [b, 3] yaw, pitch, roll in degrees; eye_open, mouth_open, mouth_width [b] in [0, 1]
    (1 = eye fully open / mouth fully open / widest mouth). Frames are rendered ``chunk`` at
    a time, which keeps the working set in the CPU cache, on one torch thread.
    -> images [b, 3, resolution, resolution] float in [0, 1].
    """
    b = pose.shape[0]
    if identity.dim() == 1:
        identity = identity[None].expand(b, -1)
    with one_torch_thread():
        parts = [
            _render(identity[i : i + chunk], pose[i : i + chunk], eye_open[i : i + chunk], mouth_open[i : i + chunk],
                    mouth_width[i : i + chunk], resolution, supersample)
            for i in range(0, b, chunk)
        ]
    return torch.cat(parts) if parts else torch.zeros(0, 3, resolution, resolution)


def _render(
    identity: torch.Tensor,
    pose: torch.Tensor,
    eye_open: torch.Tensor,
    mouth_open: torch.Tensor,
    mouth_width: torch.Tensor,
    resolution: int = 64,
    supersample: int = 2,
) -> torch.Tensor:
    """render_faces for one chunk of frames (identity already [b, IDENTITY_DIM])."""
    b = pose.shape[0]
    g = FaceGeometry.from_identity(identity.float())
    size = resolution * supersample
    coords = ((torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1) * FIELD
    y, x = -coords[:, None].expand(size, size), coords[None, :].expand(size, size)
    rotation = rotation_matrices(pose.float())  # [b, 3, 3] head -> world
    # Rays in head space: origin R^T (p - c), direction R^T e_z.
    wy = y[None] - g.head_centre_y[:, None, None]
    origin = tuple(rotation[:, 0, i, None, None] * x[None] + rotation[:, 1, i, None, None] * wy for i in range(3))
    direction = rotation[:, 2, :]
    zeros = torch.zeros(b, 3)
    radii = g.head_radii
    rx, ry, rz = radii.unbind(-1)

    # Head (skin with painted features).
    head_depth, head_point, head_edge = _ellipsoid_hit(origin, direction, zeros, radii)
    u, v, _ = head_point
    face = _paint_face(g, u, v, eye_open.float(), mouth_open.float(), mouth_width.float())
    surfaces = [(coverage(head_edge), head_depth, face * _shade(head_point, radii, rotation))]

    # Nose: an ellipsoid half sunk into the face, from between the eyes to the tip.
    nose_radii = torch.stack([g.nose_width, g.nose_length / 2 + 0.02, torch.full_like(rx, 0.07)], -1)
    nose_v = EYE_V - 0.03 - g.nose_length / 2
    nose_surface_z = rz * torch.sqrt((1 - (nose_v / ry) ** 2).clamp(min=0))
    nose_centre = torch.stack([torch.zeros_like(rx), nose_v, nose_surface_z - 0.035], -1)
    depth, point, edge = _ellipsoid_hit(origin, direction, nose_centre, nose_radii)
    nose_colour = g.skin[:, :, None, None] * 0.97 * _shade(point, nose_radii, rotation)
    surfaces.append((coverage(edge), depth, nose_colour))

    # Ears: small ellipsoids on the sides of the head.
    ear_radii = torch.stack([torch.full_like(rx, 0.05), torch.full_like(rx, 0.12), torch.full_like(rx, 0.08)], -1)
    for side in (-1.0, 1.0):
        centre = torch.stack([side * rx * 0.95, torch.full_like(rx, EYE_V - 0.1), torch.full_like(rx, -0.04)], -1)
        depth, point, edge = _ellipsoid_hit(origin, direction, centre, ear_radii)
        surfaces.append((coverage(edge), depth, g.skin[:, :, None, None] * 0.9 * _shade(point, ear_radii, rotation)))

    # Hair: a shell a little larger than the head, kept above a hairline that drops towards the back.
    hair_radii = radii * torch.tensor([1.07, 1.05, 1.07])
    hair_centre = torch.stack([torch.zeros_like(rx), torch.full_like(rx, 0.03), torch.full_like(rx, -0.03)], -1)
    depth, point, edge = _ellipsoid_hit(origin, direction, hair_centre, hair_radii)
    hu, hv, hz = point
    front = (hz / hair_radii[:, 2, None, None]).clamp(0, 1)
    hairline = g.hairline[:, None, None] - 0.22 * (hu / hair_radii[:, 0, None, None]) ** 2 - 0.55 * (1 - front) ** 2
    hair_alpha = coverage(edge) * coverage(pixel_distance(hairline - hv))
    surfaces.append((hair_alpha, depth, g.hair[:, :, None, None] * _shade(point, hair_radii, rotation)))

    # Soft depth test among the head's surfaces.
    nearest = torch.full_like(head_depth, -10.0)
    for alpha, depth, _ in surfaces:
        nearest = torch.maximum(nearest, torch.where(alpha > 0, depth, -10.0))
    total = torch.zeros_like(face)
    weight_sum = torch.full_like(head_depth, 1e-6)
    transmission = torch.ones_like(head_depth)
    for alpha, depth, colour in surfaces:
        weight = alpha * torch.exp((depth - nearest).clamp(max=0) / _DEPTH_SOFTNESS)
        total += weight[:, None] * colour
        weight_sum += weight
        transmission *= 1 - alpha
    head_colour = total / weight_sum[:, None]
    head_alpha = 1 - transmission

    # Behind the head: background gradient, neck and shoulders (they do not rotate).
    ones = torch.ones(b, 1, size, size)
    image = g.background[:, :, None, None] * (0.92 + 0.1 * y)[None, None] * ones
    neck_top = g.head_centre_y[:, None, None] - 0.3
    neck = torch.maximum(x.abs()[None] - (0.55 * rx)[:, None, None], y[None] - neck_top)
    image = _mix(image, g.skin * 0.72, coverage(pixel_distance(neck)))
    torso = torch.sqrt((x[None] / 0.95) ** 2 + ((y[None] + 1.32) / 0.45) ** 2).expand(b, -1, -1) - 1
    image = _mix(image, g.clothing[:, :, None, None] * (1.0 + 0.25 * (y + 1))[None, None], coverage(pixel_distance(torso)))
    image = image + (head_colour - image) * head_alpha[:, None]
    image = image.clamp(0, 1)
    if supersample > 1:
        image = F.avg_pool2d(image, supersample)
    return image
