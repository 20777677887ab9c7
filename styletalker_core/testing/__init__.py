"""Contract suites for StyleTalker components, usable outside a StyleTalker checkout.

- :data:`CONTRACTS` / :func:`contracts_for`: the checks of each component kind; a check is a plain
  function taking a :class:`ComponentFactory` and raising AssertionError with a message that names
  the component.
- :func:`parametrize_with_contracts`: a pytest parametrization over (component, contract) pairs.
- ``pytest --styletalker-contracts PACKAGE`` (the pytest plugin of this package): every contract on
  every component PACKAGE registers.

See docs/testing.md ("Contracts for your plugin"). The names below load on first use: pytest
imports this package for its plugin in every test run, and that must not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CONTRACTS": "styletalker_core.testing.contracts",
    "Contract": "styletalker_core.testing.contracts",
    "contracts_for": "styletalker_core.testing.contracts",
    "ComponentFactory": "styletalker_core.testing.factory",
    "NotApplicable": "styletalker_core.testing.factory",
    "contract_cases": "styletalker_core.testing.parametrize",
    "parametrize_with_contracts": "styletalker_core.testing.parametrize",
    "factories_of_kind": "styletalker_core.testing.selection",
    "factories_of_plugin": "styletalker_core.testing.selection",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
