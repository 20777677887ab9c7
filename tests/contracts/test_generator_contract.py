"""The contract of the ``generator`` kind (styletalker_core.testing), run on every registered
implementation built with its entry's ``example_options``."""

from __future__ import annotations

from styletalker_core.testing import factories_of_kind, parametrize_with_contracts


def test_builtin_generators_are_registered():
    assert {"stylegan2", "stylegan3"} <= {factory.name for factory in factories_of_kind("generator")}


@parametrize_with_contracts("generator")
def test_generator_contract(component, contract):
    contract(component)
