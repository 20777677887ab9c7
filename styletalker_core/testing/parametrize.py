"""``parametrize_with_contracts``: a pytest parametrization over (component, contract) pairs, in the
style of scikit-learn's ``parametrize_with_checks``."""

from __future__ import annotations

from typing import Any

from styletalker_core.errors import StyleTalkerError
from styletalker_core.registry import Registries
from styletalker_core.testing.contracts import CONTRACTS, Contract, contracts_for
from styletalker_core.testing.factory import ComponentFactory, NotApplicable
from styletalker_core.testing.selection import factories_of_kind

ARGNAMES = ("component", "contract")


def _no_contract(factory: ComponentFactory) -> None:
    raise NotApplicable(f"no contract covers the {factory.kind} kind; kinds with one: {', '.join(CONTRACTS)}")


def contract_cases(factories: list[ComponentFactory]) -> tuple[list[tuple[ComponentFactory, Contract]], list[str]]:
    """(factory, contract) pairs for every contract of each factory's kind, and their test ids
    ``<kind>:<name>-<contract>``; a kind without a contract gets one pair that is reported as skipped."""
    cases: list[tuple[ComponentFactory, Contract]] = []
    ids: list[str] = []
    for factory in factories:
        contracts = contracts_for(factory.kind) or (Contract(factory.kind, "none", _no_contract),)
        for contract in contracts:
            cases.append((factory, contract))
            ids.append(f"{factory.kind}:{factory.name}-{contract.name}")
    return cases, ids


def parametrize_with_contracts(kind: str, name: str | None = None, options: dict[str, Any] | None = None,
                               registries: Registries | None = None) -> Any:
    """Parametrize a test over every contract of ``kind`` for implementation ``name`` built with
    ``options`` (default: the entry's ``example_options``); with ``name`` None, over every
    registered implementation of ``kind`` with its example options. The test takes ``component``
    (a :class:`ComponentFactory`) and ``contract`` (a :class:`Contract`) and calls ``contract(component)``::

        @parametrize_with_contracts("flow", "elementwise_affine", {"dim": 3, "context_dim": 4})
        def test_my_flow(component, contract):
            contract(component)
    """
    import pytest

    if name is None and options is not None:
        raise StyleTalkerError("parametrize_with_contracts: options need a name (they build one implementation)")
    if not contracts_for(kind):
        raise StyleTalkerError(f"parametrize_with_contracts: no contract covers the {kind!r} kind; "
                               f"kinds with one: {', '.join(CONTRACTS)}")
    factories = (factories_of_kind(kind, registries) if name is None
                 else [ComponentFactory.of(kind, name, options, registries)])
    cases, ids = contract_cases(factories)
    return pytest.mark.parametrize(ARGNAMES, cases, ids=ids)
