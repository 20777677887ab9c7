"""The contract of the ``prior_backbone`` kind (styletalker_core.testing), run on every registered
implementation built with its entry's ``example_options`` (and trained inside its host)."""

from __future__ import annotations

from styletalker_core.testing import factories_of_kind, parametrize_with_contracts


def test_builtin_prior_backbones_are_registered():
    assert {"gru", "lstm", "transformer"} <= {factory.name for factory in factories_of_kind("prior_backbone")}


@parametrize_with_contracts("prior_backbone")
def test_prior_backbone_contract(component, contract):
    contract(component)
