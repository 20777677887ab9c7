"""The contract of the ``lip_mapper`` kind (styletalker_core.testing), run on every registered
implementation built with its entry's ``example_options``."""

from __future__ import annotations

from styletalker_core.testing import factories_of_kind, parametrize_with_contracts


def test_builtin_lip_mapper_is_registered():
    assert "conv" in {factory.name for factory in factories_of_kind("lip_mapper")}


@parametrize_with_contracts("lip_mapper")
def test_lip_mapper_contract(component, contract):
    contract(component)
