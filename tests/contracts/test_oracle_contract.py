"""The contract of the ``oracle`` kind (styletalker_core.testing: it trains inside the pipeline),
run on every registered oracle built with its entry's ``example_options``."""

from __future__ import annotations

from styletalker_core.testing import factories_of_kind, parametrize_with_contracts


def test_builtin_oracle_is_registered():
    assert "synthetic_factors" in {factory.name for factory in factories_of_kind("oracle")}


@parametrize_with_contracts("oracle")
def test_oracle_contract(component, contract):
    contract(component)
