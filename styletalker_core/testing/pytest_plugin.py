"""pytest plugin (entry point ``pytest11``: ``styletalker``): ``pytest --styletalker-contracts PACKAGE``
runs every StyleTalker contract on every component that the plugin module or package PACKAGE
registers, from any folder, without a StyleTalker checkout.

Nothing here imports torch until the option is given, so the plugin costs nothing in other test runs.
"""

from __future__ import annotations

from typing import Any

import pytest

OPTION = "--styletalker-contracts"
SUITE_MODULE = "styletalker_core.testing.suite"
_CASES = pytest.StashKey[tuple[list[Any], list[str]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("styletalker", "StyleTalker component contracts")
    group.addoption(
        OPTION, action="append", default=[], metavar="PACKAGE", dest="styletalker_contracts",
        help="run the StyleTalker contracts on every component that the plugin module or package PACKAGE "
             "registers (repeatable); a package that is importable but not installed is registered first",
    )


def pytest_configure(config: pytest.Config) -> None:
    packages = config.getoption("styletalker_contracts")
    if not packages:
        return
    from styletalker_core.errors import StyleTalkerError
    from styletalker_core.testing import suite
    from styletalker_core.testing.parametrize import contract_cases
    from styletalker_core.testing.selection import factories_of_plugin

    try:
        factories = [factory for package in packages for factory in factories_of_plugin(package)]
    except StyleTalkerError as error:
        raise pytest.UsageError(str(error)) from None
    config.stash[_CASES] = contract_cases(factories)
    # Collect the contract suite: on its own, or after the test paths given on the command line.
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        config.args.append(suite.__file__)
    else:
        config.args[:] = [suite.__file__]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__ != SUITE_MODULE or _CASES not in metafunc.config.stash:
        return
    cases, ids = metafunc.config.stash[_CASES]
    metafunc.parametrize(("component", "contract"), cases, ids=ids)
