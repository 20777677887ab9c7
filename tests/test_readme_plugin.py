"""The plugin example in README.md works as written: its files, installed as a package with
the entry point its pyproject.toml declares, register a flow that is listed with its package,
is an exact invertible map with the right log-determinant, passes the library contracts (also
through the README's ``pytest --styletalker-contracts`` command), and plugs into a recipe's prior."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import torch
from plugin_site import install_fake_distribution, run_pytest

from styletalker_core.plugin_host import ENTRY_POINT_GROUP, get_registries, reset_registries
from styletalker_core.recipe import load_recipe
from styletalker_core.registry import ComponentSpec, build_component
from styletalker_core.testing import ComponentFactory, contracts_for, factories_of_plugin

README = Path(__file__).resolve().parent.parent / "README.md"
RECIPES = README.parent / "recipes"


def readme_blocks() -> tuple[dict[str, str], dict, str]:
    """(package files by path, the package's pyproject table, the recipe) from the README's plugin section."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Write a plugin"):]
    files = dict(re.findall(r"`(my_flows/[\w.]+)`:\n\n```python\n(.*?)```", section, flags=re.S))
    tomls = re.findall(r"```toml\n(.*?)```", section, flags=re.S)
    project = next(tomllib.loads(block) for block in tomls if "[project]" in block)
    recipe = next(block for block in tomls if block.startswith("extends"))
    return files, project, recipe


@pytest.fixture
def readme_plugin(site):
    files, project, _ = readme_blocks()
    assert set(files) == {"my_flows/flow.py", "my_flows/plugin.py"}
    (entry_name, target), = project["project"]["entry-points"][ENTRY_POINT_GROUP].items()
    assert target == "my_flows.plugin"
    install_fake_distribution(site, project["project"]["name"], project["project"]["version"], "my_flows",
                              {path.split("/")[1]: source for path, source in files.items()}, entry_point=entry_name)
    reset_registries()  # components that build sub-components (the prior builds its flow) use the global registries
    yield get_registries()
    reset_registries()


def test_the_readme_flow_is_registered_with_its_package(readme_plugin):
    entry = readme_plugin["flow"].get("elementwise_affine")
    assert (entry.origin.package, entry.origin.version) == ("my-flows", "0.1.0")
    assert entry.example_options == {"dim": 3, "context_dim": 4, "hidden": 8}


def test_the_readme_flow_is_invertible_with_the_jacobians_log_determinant(readme_plugin):
    torch.manual_seed(0)
    flow = build_component(readme_plugin, "flow", ComponentSpec("elementwise_affine", {"dim": 3, "context_dim": 4}))
    flow = flow.double()
    u, context = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    z, log_det = flow(u, context)
    back, inverse_log_det = flow.inverse(z, context)
    torch.testing.assert_close(back, u)
    torch.testing.assert_close(inverse_log_det, -log_det)
    for row in range(5):
        jacobian = torch.autograd.functional.jacobian(lambda x, row=row: flow(x[None], context[row:row + 1])[0][0], u[row])
        torch.testing.assert_close(log_det[row], torch.linalg.slogdet(jacobian).logabsdet)


def test_the_readme_recipe_puts_the_flow_in_the_prior(readme_plugin, tmp_path):
    _, _, recipe_text = readme_blocks()
    path = tmp_path / "synthetic_64_elementwise_flow.toml"
    path.write_text(recipe_text.replace('"synthetic_64.toml"', f'"{(RECIPES / "synthetic_64.toml").as_posix()}"'))
    recipe = load_recipe(path, registries=readme_plugin)
    assert recipe.model["prior"].options["flow"]["name"] == "elementwise_affine"
    prior = build_component(readme_plugin, "prior", recipe.model["prior"], z_dim=4, feature_dim=6)
    assert type(prior.flow).__module__ == "my_flows.flow" and prior.flow.net[0].out_features == 64
    log_p = prior.log_prob(torch.randn(2, 7, 4), torch.randn(2, 7, 6))
    assert log_p.shape == (2, 7) and torch.isfinite(log_p).all()


def readme_command() -> list[str]:
    """The contract command the README's plugin section shows, as arguments after ``pytest``."""
    section = README.read_text(encoding="utf-8")[README.read_text(encoding="utf-8").index("## Write a plugin"):]
    command = next(line for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)
                   for line in block.splitlines() if "--styletalker-contracts" in line)
    program, *arguments = command.split()
    assert program == "pytest"
    return arguments


def test_the_readme_flow_passes_the_library_contracts(readme_plugin):
    assert readme_command() == ["--styletalker-contracts", "my_flows"]
    registered = factories_of_plugin("my_flows", readme_plugin)  # found by its entry point's origin
    assert [(factory.kind, factory.name) for factory in registered] == [("flow", "elementwise_affine")]
    factory = ComponentFactory.of("flow", "elementwise_affine", registries=readme_plugin)
    names = [contract.name for contract in contracts_for("flow")]
    assert {"inverse_undoes_forward", "log_determinant_matches_the_autograd_jacobian", "trains_in_the_pipeline"} <= set(names)
    for contract in contracts_for("flow"):
        contract(factory)


@pytest.mark.slow
def test_the_readme_contract_command_passes_on_the_installed_example(readme_plugin, site, tmp_path):
    result = run_pytest(readme_command(), tmp_path, [site])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    passed = set(re.findall(r"test_styletalker_contract\[(.+?)\] PASSED", result.stdout))
    assert passed == {f"flow:elementwise_affine-{contract.name}" for contract in contracts_for("flow")}
