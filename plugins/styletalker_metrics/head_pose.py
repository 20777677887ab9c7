"""Head pose from 68 facial landmarks: a rigid 3-D face template fitted by least-squares PnP.

The template gives approximate 3-D positions (millimetres) of the landmarks that move little
with expression (nose bridge and base, eye corners, mouth corners) for an average adult
face, with frontal proportions matched to where dlib's predictor puts these points (mouth
corners about two thirds of the outer-eye-corner distance below the eyes, the nose tip a
little below half way). Camera frame: x to the image right, y down, z away from the camera; the nose tip is
the origin and a face looking straight into the camera has the identity rotation.

The fit is the perspective-n-point problem solved in two steps: a closed-form scaled
orthographic fit (affine least squares, projected onto the nearest rotation), then
Levenberg-Marquardt on the reprojection error in pixels, over the rotation vector and
translation. Everything is vectorised over frames.

Angles (degrees), with R = Rz(roll) @ Ry(yaw) @ Rx(pitch): yaw turns about the vertical axis,
pitch nods about the horizontal axis, roll tilts in the image plane (positive: clockwise on
screen, since image y points down).
"""

from __future__ import annotations

import numpy as np

# 68-landmark index -> template position (x, y, z) in millimetres.
TEMPLATE_POINTS: dict[int, tuple[float, float, float]] = {
    27: (0.0, -38.0, 18.0),  # nasion (top of the nose bridge)
    28: (0.0, -25.0, 12.0),
    29: (0.0, -13.0, 6.0),
    30: (0.0, 0.0, 0.0),  # nose tip
    31: (-15.0, 9.0, 18.0),  # nose base, image left
    33: (0.0, 12.0, 14.0),  # subnasale
    35: (15.0, 9.0, 18.0),
    36: (-45.0, -35.0, 42.0),  # outer eye corner, image left
    39: (-19.0, -35.0, 30.0),  # inner eye corner, image left
    42: (19.0, -35.0, 30.0),
    45: (45.0, -35.0, 42.0),
    48: (-30.0, 25.0, 30.0),  # mouth corner, image left
    54: (30.0, 25.0, 30.0),
}
TEMPLATE_INDICES = np.array(sorted(TEMPLATE_POINTS))
TEMPLATE = np.array([TEMPLATE_POINTS[i] for i in TEMPLATE_INDICES], dtype=np.float64)  # [n, 3]


def rotation_matrices(rotvec: np.ndarray) -> np.ndarray:
    """Rotation vectors [f, 3] (axis times angle, radians) -> rotation matrices [f, 3, 3] (Rodrigues)."""
    theta = np.linalg.norm(rotvec, axis=-1, keepdims=True)  # [f, 1]
    axis = rotvec / np.maximum(theta, 1e-12)
    x, y, z = axis[:, 0], axis[:, 1], axis[:, 2]
    zero = np.zeros_like(x)
    skew = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(-1, 3, 3)
    sin, cos = np.sin(theta)[..., None], np.cos(theta)[..., None]
    return np.eye(3) + sin * skew + (1.0 - cos) * skew @ skew


def rotation_vectors(rotations: np.ndarray) -> np.ndarray:
    """Rotation matrices [f, 3, 3] -> rotation vectors [f, 3] (inverse of :func:`rotation_matrices`)."""
    trace = np.trace(rotations, axis1=1, axis2=2)
    theta = np.arccos(np.clip((trace - 1.0) / 2.0, -1.0, 1.0))  # [f]
    axis = np.stack(
        [rotations[:, 2, 1] - rotations[:, 1, 2], rotations[:, 0, 2] - rotations[:, 2, 0], rotations[:, 1, 0] - rotations[:, 0, 1]],
        axis=-1,
    )
    sin = np.sin(theta)
    regular = sin > 1e-6
    vectors = np.where(regular[:, None], axis * (theta / np.where(regular, 2.0 * sin, 1.0))[:, None], 0.5 * axis)
    near_pi = theta > np.pi - 1e-3  # axis from the symmetric part: R ~ 2 a a^T - I
    for index in np.flatnonzero(near_pi):
        symmetric = (rotations[index] + np.eye(3)) / 2.0
        column = int(np.argmax(np.diag(symmetric)))
        direction = symmetric[:, column] / np.sqrt(max(symmetric[column, column], 1e-12))
        vectors[index] = direction * theta[index]
    return vectors


def euler_angles(rotations: np.ndarray) -> np.ndarray:
    """Rotation matrices [f, 3, 3] -> (yaw, pitch, roll) [f, 3] in degrees, for R = Rz(roll) Ry(yaw) Rx(pitch)."""
    yaw = np.arcsin(np.clip(-rotations[:, 2, 0], -1.0, 1.0))
    pitch = np.arctan2(rotations[:, 2, 1], rotations[:, 2, 2])
    roll = np.arctan2(rotations[:, 1, 0], rotations[:, 0, 0])
    return np.degrees(np.stack([yaw, pitch, roll], axis=-1))


def rotation_from_euler(angles: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) [f, 3] in degrees -> rotation matrices [f, 3, 3] = Rz(roll) Ry(yaw) Rx(pitch)."""
    yaw, pitch, roll = np.radians(angles).T
    one, zero = np.ones_like(yaw), np.zeros_like(yaw)

    def matrix(rows: list[list[np.ndarray]]) -> np.ndarray:
        return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)

    rx = matrix([[one, zero, zero], [zero, np.cos(pitch), -np.sin(pitch)], [zero, np.sin(pitch), np.cos(pitch)]])
    ry = matrix([[np.cos(yaw), zero, np.sin(yaw)], [zero, one, zero], [-np.sin(yaw), zero, np.cos(yaw)]])
    rz = matrix([[np.cos(roll), -np.sin(roll), zero], [np.sin(roll), np.cos(roll), zero], [zero, zero, one]])
    return rz @ ry @ rx


def project(points: np.ndarray, rotvec: np.ndarray, translation: np.ndarray, focal: float, center: np.ndarray) -> np.ndarray:
    """Template points [n, 3] seen with pose ([f, 3] rotation vectors, [f, 3] translations) -> pixels [f, n, 2]."""
    camera = points[None] @ rotation_matrices(rotvec).transpose(0, 2, 1) + translation[:, None, :]  # [f, n, 3]
    depth = np.maximum(camera[..., 2:3], 1e-6)
    return focal * camera[..., :2] / depth + center


def _initial_pose(image_points: np.ndarray, focal: float, center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scaled orthographic fit: pixels [f, n, 2] -> (rotation vectors [f, 3], translations [f, 3])."""
    mean_3d = TEMPLATE.mean(0)
    centred_3d = TEMPLATE - mean_3d  # [n, 3]
    centred_2d = image_points - image_points.mean(1, keepdims=True)  # [f, n, 2]
    solve = np.linalg.pinv(centred_3d)  # [3, n]
    affine = np.einsum("kn,fnd->fdk", solve, centred_2d)  # [f, 2, 3]: x ~ affine @ X
    u, singular, vt = np.linalg.svd(affine, full_matrices=False)  # u [f, 2, 2], vt [f, 2, 3]
    scale = singular.mean(-1)  # pixels per millimetre
    rows = u @ vt  # nearest matrix with orthonormal rows
    rotations = np.concatenate([rows, np.cross(rows[:, 0], rows[:, 1])[:, None]], axis=1)
    depth = focal / np.maximum(scale, 1e-9)
    offset = np.concatenate([(image_points.mean(1) - center) * (depth / focal)[:, None], depth[:, None]], axis=-1)
    translation = offset - np.einsum("fij,j->fi", rotations, mean_3d)
    return rotation_vectors(rotations), translation


def solve_pnp(
    image_points: np.ndarray,
    image_size: tuple[int, int],
    focal: float | None = None,
    iterations: int = 30,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit the template to the template landmarks of each frame.

    image_points: [f, n, 2] pixel positions (x, y) of the landmarks TEMPLATE_INDICES.
    image_size: (height, width) in pixels; the principal point is the image centre.
    focal: focal length in pixels (default: the image width, a field of view of about 53 degrees).
    Returns rotation matrices [f, 3, 3], translations [f, 3] (millimetres) and the RMS
    reprojection error [f] in pixels.
    """
    height, width = image_size
    focal = float(focal or width)
    center = np.array([width / 2.0, height / 2.0])
    points = np.asarray(image_points, dtype=np.float64)
    rotvec, translation = _initial_pose(points, focal, center)
    params = np.concatenate([rotvec, translation], axis=-1)  # [f, 6]
    steps = np.array([1e-4, 1e-4, 1e-4, 1e-2, 1e-2, 1e-1])

    def residuals(p: np.ndarray) -> np.ndarray:  # [f, 2n]
        return (project(TEMPLATE, p[:, :3], p[:, 3:], focal, center) - points).reshape(len(p), -1)

    damping = np.full(len(params), 1e-3)
    current = residuals(params)
    cost = (current**2).sum(-1)
    for _ in range(iterations):
        jacobian = np.stack(
            [(residuals(params + step * unit) - residuals(params - step * unit)) / (2.0 * step) for step, unit in zip(steps, np.eye(6))],
            axis=-1,
        )  # [f, 2n, 6]
        normal = jacobian.transpose(0, 2, 1) @ jacobian
        gradient = np.einsum("fri,fr->fi", jacobian, current)
        scaled = normal + damping[:, None, None] * np.diagonal(normal, axis1=1, axis2=2)[..., None] * np.eye(6)
        update = np.linalg.solve(scaled + 1e-12 * np.eye(6), -gradient[..., None])[..., 0]
        candidate = params + update
        new = residuals(candidate)
        new_cost = (new**2).sum(-1)
        better = new_cost < cost
        params = np.where(better[:, None], candidate, params)
        current = np.where(better[:, None], new, current)
        cost = np.where(better, new_cost, cost)
        damping = np.where(better, damping * 0.3, damping * 10.0).clip(1e-9, 1e9)
    rms = np.sqrt(cost / len(TEMPLATE))
    return rotation_matrices(params[:, :3]), params[:, 3:], rms


def head_pose(landmarks: np.ndarray, image_size: tuple[int, int], focal: float | None = None) -> np.ndarray:
    """68-point landmarks [t, 68, 2] (NaN rows for frames without a face) -> (yaw, pitch, roll) [t, 3] degrees.

    Frames whose landmarks are NaN get NaN angles.
    """
    angles = np.full((len(landmarks), 3), np.nan)
    points = landmarks[:, TEMPLATE_INDICES]
    found = np.isfinite(points).all(axis=(1, 2))
    if found.any():
        rotations, _, _ = solve_pnp(points[found], image_size, focal)
        angles[found] = euler_angles(rotations)
    return angles
