"""Identity parameters of synthetic faces, their distribution, and their split (train / val / test).

An identity is a vector of ``IDENTITY_DIM`` continuous factors, each in [0, 1] (the
"identity vector" stored as a per-frame label and read back by the factor oracle). The
renderer maps each factor to a physical quantity (see :data:`IDENTITY_FACTORS`).

Identities are numbered. Identity ``k`` of a pool is drawn from its own random stream
(``numpy.random.default_rng([seed, SALT, k])``), so it never depends on how many other
identities were drawn. A pool holds ``num_train`` training identities (numbers
``0 .. num_train - 1``) and ``num_heldout`` held-out identities (the numbers after them);
held-out identities are redrawn until they lie at least ``min_distance`` (L2, in factor
units) from every training identity, so the two sets are disjoint as vectors, not only by
number. The held-out numbers form one split, ``heldout`` (datasets made before the
validation split existed), or consecutive blocks, one per split of ``held_splits``
(``(("val", 20), ("test", 30))``: numbers ``num_train .. num_train + 19`` are ``val``, the
next 30 ``test``).
"""

from __future__ import annotations

import attrs
import numpy as np

# name -> what it controls (the renderer maps [0, 1] to its physical range).
IDENTITY_FACTORS: dict[str, str] = {
    "head_width": "half-width of the head ellipsoid",
    "head_height": "half-height of the head ellipsoid",
    "skin_tone": "skin colour, light to dark",
    "hair_hue": "hair hue, red-brown to yellow-blond",
    "hair_lightness": "hair brightness, black to light",
    "hairline": "height of the front hairline",
    "background_hue": "background hue",
    "background_lightness": "background brightness",
    "eye_spacing": "distance between the eyes",
    "eye_size": "eye width and height",
    "iris_hue": "iris colour, brown to blue-green",
    "nose_length": "nose length (and so its tip height)",
    "nose_width": "nose width",
    "mouth_height": "vertical placement of the mouth",
    "mouth_size": "resting mouth width",
    "lip_redness": "lip colour, pale to red",
    "brow_arch": "eyebrow arch",
    "brow_thickness": "eyebrow thickness",
    "brow_height": "gap between eyes and eyebrows",
    "clothing_hue": "clothing hue",
}
IDENTITY_DIM = len(IDENTITY_FACTORS)
_SALT = 0x1D3

def sample_identity(seed: int, number: int) -> np.ndarray:
    """Identity ``number`` of the stream ``seed`` -> float32 [IDENTITY_DIM] in [0, 1].

    Factors follow Beta(1.3, 1.3): every value is possible, the extremes a little rarer.
    """
    rng = np.random.default_rng([seed, _SALT, number])
    return rng.beta(1.3, 1.3, size=IDENTITY_DIM).astype(np.float32)


@attrs.frozen
class IdentityPool:
    """``num_train`` training identities and ``num_heldout`` disjoint held-out identities, the
    latter split into ``held_splits`` (name, count) blocks, or one ``heldout`` split when empty."""

    seed: int
    num_train: int
    num_heldout: int
    min_distance: float = 0.35
    held_splits: tuple[tuple[str, int], ...] = ()

    def __attrs_post_init__(self) -> None:
        if self.num_train < 1 or self.num_heldout < 0:
            raise ValueError(f"identity pool needs >= 1 training identity, got {self.num_train} / {self.num_heldout}")
        if self.held_splits and sum(count for _, count in self.held_splits) != self.num_heldout:
            raise ValueError(f"held_splits {self.held_splits} do not add up to {self.num_heldout} held-out identities")

    def train_ids(self) -> list[int]:
        return list(range(self.num_train))

    def heldout_ids(self) -> list[int]:
        """Every held-out identity number (of all held-out splits)."""
        return list(range(self.num_train, self.num_train + self.num_heldout))

    def split_names(self) -> list[str]:
        return ["train", *(name for name, _ in self.held_splits)] if self.held_splits else ["train", "heldout"]

    def ids(self, split: str) -> list[int]:
        """Identity numbers of ``split`` ("train", then "heldout" or the names of ``held_splits``)."""
        if split == "train":
            return self.train_ids()
        if split == "heldout" and not self.held_splits:
            return self.heldout_ids()
        start = self.num_train
        for name, count in self.held_splits:
            if name == split:
                return list(range(start, start + count))
            start += count
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(self.split_names())}")

    def train_vectors(self) -> np.ndarray:
        """float32 [num_train, IDENTITY_DIM]."""
        return np.stack([sample_identity(self.seed, k) for k in self.train_ids()])

    def vector(self, number: int) -> np.ndarray:
        """Identity vector of identity ``number``: float32 [IDENTITY_DIM]."""
        if number < self.num_train:
            return sample_identity(self.seed, number)
        if number >= self.num_train + self.num_heldout:
            raise IndexError(f"identity {number} is outside the pool of {self.num_train + self.num_heldout}")
        train = self.train_vectors()
        draw = 0
        while True:
            # Held-out identity k uses candidate streams offset far past any training number.
            candidate = sample_identity(self.seed, 1_000_000 + number * 1000 + draw)
            if np.min(np.linalg.norm(train - candidate, axis=1)) >= self.min_distance or draw >= 999:
                return candidate
            draw += 1
