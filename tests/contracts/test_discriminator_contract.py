"""The contract of the ``discriminator`` kind (styletalker_core.testing), run on every registered
implementation built with its entry's ``example_options``."""

from __future__ import annotations

from styletalker_core.testing import factories_of_kind, parametrize_with_contracts


def test_builtin_discriminators_are_registered():
    assert "stylegan2" in {factory.name for factory in factories_of_kind("discriminator")}


@parametrize_with_contracts("discriminator")
def test_discriminator_contract(component, contract):
    contract(component)
