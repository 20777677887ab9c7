"""The contract of the ``flow`` kind (styletalker_core.testing), run on every registered
implementation built with its entry's ``example_options``."""

from __future__ import annotations

from styletalker_core.testing import factories_of_kind, parametrize_with_contracts


def test_builtin_flows_are_registered():
    assert {"none", "affine_coupling", "spline"} <= {factory.name for factory in factories_of_kind("flow")}


@parametrize_with_contracts("flow")
def test_flow_contract(component, contract):
    contract(component)
