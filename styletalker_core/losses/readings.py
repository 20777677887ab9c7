"""Factor-reading loss: a frozen factor oracle must read the same factors from a generated frame
as from its target.

A pixel loss pays little for a mouth drawn a bit too small or an eyelid half closed, because
they cover a few pixels; a reading of mouth or eye openness pays in proportion to the error.
Train against a different oracle from the one that scores the results (the synthetic domain
ships two: recipes/oracle_synthetic_loss.toml), so that the score does not reward frames made
to fool one network. Axis letters: b batch, h/w height/width.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast

import torch
from torch import nn

from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces.oracle import FactorOracle
from styletalker_core.paths import find_project_file

DEFAULT_READINGS = ("mouth_open", "eye_open")


def load_frozen_oracle(path: str) -> nn.Module:
    """The ``oracle`` component of the checkpoint at ``path`` (relative paths also looked up from the
    project folder), in eval mode with no gradients of its own; a clear error when it is missing."""
    found = find_project_file(path) if path else None
    if found is None or not found.is_file():
        raise StyleTalkerError(f"readings_oracle {path!r}: the readings term needs a factor-oracle checkpoint; "
                               "train one with `styletalker train recipes/oracle_synthetic_loss.toml`")
    return load_oracle_checkpoint(found)


def load_oracle_checkpoint(path: Path) -> FactorOracle:
    """The ``oracle`` component of an existing checkpoint file, frozen: eval mode, no gradients."""
    from styletalker_core.checkpoint import load_checkpoint

    oracle = load_checkpoint(path, roles=["oracle"])["oracle"].eval().requires_grad_(False)
    return cast("FactorOracle", oracle)  # built from the oracle kind


def reading_error(oracle: nn.Module, generated: torch.Tensor, targets: torch.Tensor,
                  factors: Sequence[str] = DEFAULT_READINGS) -> torch.Tensor:
    """Mean over ``factors`` and images of (reading of the generated frame - reading of the target)^2;
    generated, targets [b, 3, h, w] in [-1, 1] -> []. Gradients reach ``generated`` only."""
    with torch.no_grad():
        wanted = oracle(targets)
    readings = oracle(generated)
    missing = [name for name in factors if name not in readings]
    if missing:
        raise StyleTalkerError(f"readings_factors {missing}: the oracle reads {sorted(readings)}")
    return torch.stack([(readings[name] - wanted[name]).pow(2).mean() for name in factors]).mean()
