"""The contracts as a library for third parties: ``pytest --styletalker-contracts PACKAGE`` runs
every contract on a package outside this project (tests/thirdparty_plugin) from another folder,
passes on a correct one and fails, naming the contract and the defect, on a broken one; which
components a package registers; ``parametrize_with_contracts``."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from plugin_site import install_fake_distribution, run_pytest

from styletalker_core.errors import StyleTalkerError
from styletalker_core.plugin_host import build_registries
from styletalker_core.testing import contracts_for, factories_of_plugin, parametrize_with_contracts

THIRD_PARTY = Path(__file__).resolve().parent / "thirdparty_plugin"


def run_contracts(package: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """``pytest --styletalker-contracts package`` in ``folder`` (not this project), the third-party
    folder on PYTHONPATH as an uninstalled package would be."""
    return run_pytest(["--styletalker-contracts", package], folder, [THIRD_PARTY])


def expected_ids(kind: str, name: str) -> set[str]:
    return {f"{kind}:{name}-{contract.name}" for contract in contracts_for(kind)}


@pytest.mark.slow
def test_a_third_party_package_passes_every_contract_from_another_folder(tmp_path):
    result = run_contracts("acme_talking", tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    passed = set(re.findall(r"test_styletalker_contract\[(.+?)\] PASSED", result.stdout))
    assert passed == expected_ids("generator", "acme_linear") | expected_ids("prior_backbone", "acme_elman")
    assert {"generator:acme_linear-trains_in_the_pipeline", "prior_backbone:acme_elman-is_causal"} <= passed
    assert f"{len(passed)} passed" in result.stdout


@pytest.mark.slow
def test_a_broken_backbone_fails_naming_the_contract_and_the_defect(tmp_path):
    result = run_contracts("acme_broken", tmp_path)
    assert result.returncode == 1, result.stdout[-3000:]
    failed = set(re.findall(r"test_styletalker_contract\[(.+?)\] FAILED", result.stdout))
    assert failed == {"prior_backbone:peeking-is_causal", "prior_backbone:peeking-steps_equal_the_teacher_forced_sequence"}
    assert ("AssertionError: contract prior_backbone.is_causal failed: prior_backbone 'peeking': changing input 5 "
            "changed hidden states [4]: the backbone reads the future") in result.stdout
    assert "contract prior_backbone.steps_equal_the_teacher_forced_sequence failed: prior_backbone 'peeking': " \
           "step by step differs from sequence" in result.stdout
    assert f"2 failed, {len(contracts_for('prior_backbone')) - 2} passed" in result.stdout


def test_an_unknown_package_is_a_usage_error_with_one_line(tmp_path):
    result = run_contracts("acme_missing", tmp_path)
    assert result.returncode == 4  # pytest's usage error
    assert "--styletalker-contracts acme_missing: cannot import it (No module named 'acme_missing'); install the " \
           "package or put it on PYTHONPATH" in result.stderr


def test_an_uninstalled_package_is_registered_by_its_hook(monkeypatch):
    monkeypatch.syspath_prepend(str(THIRD_PARTY))
    registries = build_registries()
    factories = factories_of_plugin("acme_talking", registries)
    assert [(f.kind, f.name, f.options) for f in factories] == [
        ("generator", "acme_linear", {"resolution": 4, "num_ws": 3, "w_dim": 8}),
        ("prior_backbone", "acme_elman", {"input_dim": 5, "hidden": 8}),
    ]
    origin = registries["generator"].get("acme_linear").origin
    assert (origin.package, origin.version, origin.module) == ("acme_talking", "not installed", "acme_talking.plugin")
    # registered once: asking again finds the entries instead of registering twice
    assert factories_of_plugin("acme_talking", registries) == factories
    # the prior built from those registries takes the new backbone by name
    assert "acme_elman" in registries["prior_backbone"]


def test_an_installed_package_is_found_by_its_entry_point_origin(site):
    files = {path.name: path.read_text().replace("acme_talking", "acme_installed")
             for path in (THIRD_PARTY / "acme_talking").glob("*.py") if path.name != "__init__.py"}
    install_fake_distribution(site, "acme-talking", "0.2.0", "acme_installed", files)
    registries = build_registries()  # loads the entry point: the hook has run
    factories = factories_of_plugin("acme_installed", registries)
    assert {(f.kind, f.name) for f in factories} == {("generator", "acme_linear"), ("prior_backbone", "acme_elman")}
    assert registries["prior_backbone"].get("acme_elman").origin.package == "acme-talking"


def test_a_package_without_a_hook_is_named(monkeypatch):
    monkeypatch.syspath_prepend(str(THIRD_PARTY))
    with pytest.raises(StyleTalkerError, match=re.escape(
            "--styletalker-contracts acme_talking.generator: neither acme_talking.generator nor "
            "acme_talking.generator.plugin defines a styletalker_register(registrar) hook")):
        factories_of_plugin("acme_talking.generator", build_registries())


def test_parametrize_with_contracts_builds_the_named_implementation_with_its_options():
    mark = parametrize_with_contracts("flow", "spline", {"dim": 2, "context_dim": 3, "steps": 1, "hidden": 4})
    names, cases = mark.args
    assert names == ("component", "contract")
    assert [contract.name for _, contract in cases] == [contract.name for contract in contracts_for("flow")]
    assert {(factory.name, factory.options["dim"]) for factory, _ in cases} == {("spline", 2)}
    assert mark.kwargs["ids"][0] == "flow:spline-shapes"
    for factory, contract in cases:
        if contract.name in ("shapes", "inverse_undoes_forward"):
            contract(factory)
    with pytest.raises(StyleTalkerError, match="no contract covers the 'stage' kind"):
        parametrize_with_contracts("stage", "prior_only")
