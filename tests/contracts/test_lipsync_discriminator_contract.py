"""The contract of the ``lipsync_discriminator`` kind (styletalker_core.testing), run on every registered
implementation built with its entry's ``example_options``."""

from __future__ import annotations

from styletalker_core.testing import factories_of_kind, parametrize_with_contracts


def test_builtin_discriminator_is_registered():
    assert "contrastive" in {factory.name for factory in factories_of_kind("lipsync_discriminator")}


@parametrize_with_contracts("lipsync_discriminator")
def test_lipsync_discriminator_contract(component, contract):
    contract(component)
