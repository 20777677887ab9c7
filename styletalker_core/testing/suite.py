"""The test that ``pytest --styletalker-contracts PACKAGE`` collects: the pytest plugin
(:mod:`styletalker_core.testing.pytest_plugin`) parametrizes it over every contract of every
component PACKAGE registers."""

from __future__ import annotations

from styletalker_core.testing.contracts import Contract
from styletalker_core.testing.factory import ComponentFactory


def test_styletalker_contract(component: ComponentFactory, contract: Contract) -> None:
    contract(component)
