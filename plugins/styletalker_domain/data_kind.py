"""What the training data of a domain stage is: its name for the encoder's out-of-domain warning,
and whether it carries the synthetic domain's labels (so a synthetic factor oracle can judge it).

Stage evaluations follow the data: the factor oracle of the synthetic domain reads synthetic
faces only, so its R^2 numbers are reported only on clips with the synthetic labels
(``styletalker data synth``); on real videos (``styletalker preprocess``) it is skipped with one
log line. An encoder trained without a ``domain`` option is named after its training data.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from styletalker_core.interfaces.image_encoder import ImageEncoder

LOG = logging.getLogger(__name__)
SYNTHETIC_LABELS = ("mouth_open", "eye_open")


def _reader(dataset: Any) -> Any:
    return getattr(dataset, "reader", None)


def has_synthetic_labels(dataset: Any) -> bool:
    """True when the dataset's clips carry the synthetic domain's per-frame labels."""
    reader = _reader(dataset)
    if reader is None:
        return True  # a dataset we cannot inspect: leave the stage's options in charge
    records = reader.records.values()
    return any(all(name in (record.get("labels") or {}) for name in SYNTHETIC_LABELS) for record in records)


def domain_name(dataset: Any) -> str:
    """A name for the data a stage trains on: "talking faces preprocessed from <folder> (64 px)",
    "synthetic talking faces (styletalker data synth, 64 px)", or the dataset folder's name."""
    reader = _reader(dataset)
    if reader is None:
        return ""
    info = reader.info or {}
    heights = {record.get("height") for record in reader.records.values()}
    size = f", {heights.pop()} px" if len(heights) == 1 else ""
    tool = str(info.get("tool", ""))
    if "preprocess" in tool:
        source = Path(str(info.get("source", "") or reader.root)).name
        return f"talking faces preprocessed from {source} (styletalker preprocess{size})"
    if "synth" in tool:
        return f"synthetic talking faces (styletalker data synth{size})"
    return f"the clips of {Path(reader.root).name}{' (' + size[2:] + ')' if size else ''}"


def name_encoder_domain(encoder: ImageEncoder, dataset: Any) -> None:
    """Give an encoder without a ``domain`` the name of its training data (kept in its checkpoint)."""
    from styletalker_core.registry.components import ComponentSpec

    if getattr(encoder, "domain", None) != "":
        return
    name = domain_name(dataset)
    if not name:
        return
    encoder.domain = name
    spec = getattr(encoder, "component_spec", None)
    if isinstance(spec, ComponentSpec):
        object.__setattr__(encoder, "component_spec", ComponentSpec(name=spec.name, options={**spec.options, "domain": name},
                                                                    weights=spec.weights, kind=spec.kind))
    LOG.info("image encoder: domain named after its training data: %s", name)
