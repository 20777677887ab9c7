"""The image terms stages put on rendered frames, as one typed option table.

Every stage that compares rendered frames with real ones weights the same terms, named the same
way: ``<term>_weight`` is a term's weight (0 turns it off), ``<term>_kind`` picks how a term is
computed, and the term's other settings carry its name (``readings_oracle``). The domain stages'
reconstruction objective (``[stages.encoder.objective]``) and the main stage's objective
(``[stages.main.objective]``) extend this class with their own terms and defaults.
"""

from __future__ import annotations

from typing import Literal

import attrs

PerceptualKind = Literal["auto", "lpips", "ms_ssim"]


@attrs.define(kw_only=True)
class ImageTermsConfig:
    """Weights and settings of the image terms.

    ``l1_weight``: mean absolute error. ``perceptual_weight`` / ``perceptual_kind``: LPIPS (with
    ``lpips_weights``, or "auto" when that file is given) or MS-SSIM. ``mouth_weight`` /
    ``eyes_weight``: L1 inside the lip / eye landmark boxes (the frames' landmarks needed).
    ``readings_weight``: squared difference of what the frozen factor oracle of ``readings_oracle``
    reads (``readings_factors``; empty: mouth and eye openness) from rendered and real frames.
    ``latent_weight``: distance of the W+ codes (to the mean code, or to the real frames' codes).
    """

    l1_weight: float = 1.0
    perceptual_weight: float = 0.5
    perceptual_kind: PerceptualKind = "auto"
    lpips_weights: str = ""
    mouth_weight: float = 0.0
    eyes_weight: float = 0.0
    readings_weight: float = 0.0
    readings_oracle: str = ""
    readings_factors: list[str] | None = None
    latent_weight: float = 0.0
