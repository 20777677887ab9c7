"""The contract of the ``prior`` kind (styletalker_core.testing), run on every registered
implementation built with its entry's ``example_options``."""

from __future__ import annotations

from styletalker_core.testing import factories_of_kind, parametrize_with_contracts


def test_builtin_prior_is_registered():
    assert "autoregressive" in {factory.name for factory in factories_of_kind("prior")}


@parametrize_with_contracts("prior")
def test_prior_contract(component, contract):
    contract(component)
