"""The contract of the ``motion_vae`` kind (styletalker_core.testing), run on every registered
implementation built with its entry's ``example_options``."""

from __future__ import annotations

from styletalker_core.testing import factories_of_kind, parametrize_with_contracts


def test_builtin_motion_vae_is_registered():
    assert "sequential" in {factory.name for factory in factories_of_kind("motion_vae")}


@parametrize_with_contracts("motion_vae")
def test_motion_vae_contract(component, contract):
    contract(component)
