"""The contract of the ``image_encoder_backbone`` kind (styletalker_core.testing), run on every registered
implementation built with its entry's ``example_options`` (and trained inside its host)."""

from __future__ import annotations

from styletalker_core.testing import factories_of_kind, parametrize_with_contracts


def test_builtin_image_encoder_backbones_are_registered():
    assert {"ir", "ir_se", "resnet"} <= {factory.name for factory in factories_of_kind("image_encoder_backbone")}


@parametrize_with_contracts("image_encoder_backbone")
def test_image_encoder_backbone_contract(component, contract):
    contract(component)
