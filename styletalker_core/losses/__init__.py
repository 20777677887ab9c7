"""Losses shared by training stages: perceptual distances (LPIPS or MS-SSIM), an edge term, landmark
regions, factor readings and W+ regularisers.

Every distance returns one value per image or code ([b]); stages weight and average them.
"""

from styletalker_core.losses.edges import detail_weights, gradient_l1
from styletalker_core.losses.latent import delta_regularisation, latent_distance, latent_l2
from styletalker_core.losses.lpips import LPIPS, VGG16Features
from styletalker_core.losses.perceptual import PerceptualLoss, build_perceptual_loss
from styletalker_core.losses.readings import DEFAULT_READINGS, load_frozen_oracle, load_oracle_checkpoint, reading_error
from styletalker_core.losses.regions import EYE_POINTS, MOUTH_POINTS, REGION_MARGIN, landmark_box_mask, masked_l1, require_landmarks, weighted_regions
from styletalker_core.losses.ssim import MSSSIMLoss, MultiScaleSSIM

__all__ = [
    "DEFAULT_READINGS",
    "EYE_POINTS",
    "LPIPS",
    "MOUTH_POINTS",
    "MSSSIMLoss",
    "MultiScaleSSIM",
    "PerceptualLoss",
    "REGION_MARGIN",
    "VGG16Features",
    "build_perceptual_loss",
    "delta_regularisation",
    "detail_weights",
    "gradient_l1",
    "landmark_box_mask",
    "latent_distance",
    "latent_l2",
    "load_frozen_oracle",
    "load_oracle_checkpoint",
    "masked_l1",
    "reading_error",
    "require_landmarks",
    "weighted_regions",
]
