"""Plugins: built-ins load through entry points, and a separate third-party package (a real
``.dist-info`` with an entry point, on sys.path from a temporary directory) registers a
generator that a recipe can use with no change to this project."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import json
import os
import subprocess
import sys

import pytest
import torch
from plugin_site import install_fake_distribution

from styletalker_core.errors import RegistryError, StyleTalkerError
from styletalker_core.plugin_host import ENTRY_POINT_GROUP, build_registries, get_registries, hookspecs, reset_registries
from styletalker_core.recipe import load_recipe
from styletalker_core.registry import build_component
from styletalker_core.registry.kinds import KINDS

THIRD_PARTY_MODEL = '''
"""A user's own backbone: W+ codes -> pixels through one linear layer and tanh."""

from __future__ import annotations

import torch
from torch import nn

from styletalker_core.interfaces import Generator


class LinearGenerator(Generator):
    """Third-party linear generator."""

    def __init__(self, resolution: int = 8, num_ws: int = 4, w_dim: int = 16) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = w_dim, 0, w_dim
        self.num_ws, self.resolution, self.img_channels = num_ws, resolution, 3
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.mapping_layer = nn.Linear(w_dim, w_dim)
        self.to_pixels = nn.Linear(num_ws * w_dim, 3 * resolution * resolution)

    def mapping(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, update_emas=False):
        ws = self.mapping_layer(z).unsqueeze(1).repeat(1, self.num_ws, 1)
        return self.w_avg + truncation_psi * (ws - self.w_avg)

    def synthesis(self, ws, noise_mode="const", update_emas=False):
        pixels = torch.tanh(self.to_pixels(ws.flatten(1)))
        return pixels.view(ws.shape[0], 3, self.resolution, self.resolution)
'''

THIRD_PARTY_PLUGIN = '''
from styletalker_core.plugin_host import hookimpl
from {module}.model import LinearGenerator


@hookimpl
def styletalker_register(registrar):
    registrar.register("generator", "{name}", LinearGenerator, example_options={{"resolution": 4}})
'''

DUPLICATE_LOGGER_PLUGIN = '''
from styletalker_core.plugin_host import hookimpl
from styletalker_loggers.jsonl import JsonLinesLogger


@hookimpl
def styletalker_register(registrar):
    registrar.register("logger", "jsonl", JsonLinesLogger)
'''


@pytest.fixture
def third_party(site):
    install_fake_distribution(
        site,
        "acme-talking-gan",
        "3.1.4",
        "acme_gan",
        {"model.py": THIRD_PARTY_MODEL, "plugin.py": THIRD_PARTY_PLUGIN.format(module="acme_gan", name="acme_linear")},
    )
    return site


def test_builtin_plugins_are_entry_points_of_this_distribution():
    distribution = importlib.metadata.distribution("styletalker")
    declared = {ep.value for ep in distribution.entry_points if ep.group == ENTRY_POINT_GROUP}
    assert "styletalker_loggers.plugin" in declared
    registries = build_registries()
    jsonl = registries["logger"].get("jsonl")
    assert (jsonl.origin.package, jsonl.origin.version) == ("styletalker", distribution.version)
    assert jsonl.origin.module == "styletalker_loggers.plugin"
    # every registered component comes from a declared entry point, none from elsewhere
    assert {entry.origin.module for entry in registries.entries()} <= declared


def test_third_party_generator_is_listed_with_its_package_and_version(third_party):
    registries = build_registries()
    entry = registries["generator"].get("acme_linear")
    assert (entry.origin.package, entry.origin.version, entry.origin.module) == ("acme-talking-gan", "3.1.4", "acme_gan.plugin")
    assert entry.description == "Third-party linear generator."
    assert entry.example_options == {"resolution": 4}
    # built-ins are still there
    assert "jsonl" in registries["logger"]


def test_third_party_generator_is_usable_from_a_recipe(third_party, write_recipe):
    path = write_recipe(
        "acme.toml",
        """
        name = "acme"
        [model.generator]
        name = "acme_linear"
        resolution = 8
        num_ws = 3
        """,
    )
    registries = build_registries()
    recipe = load_recipe(path, ["model.generator.w_dim=32"], registries=registries)
    generator = build_component(registries, "generator", recipe.model["generator"])
    assert type(generator).__module__ == "acme_gan.model"
    ws = generator.mapping(torch.randn(2, 32))
    assert ws.shape == (2, 3, 32)
    images = generator.synthesis(ws)
    assert images.shape == (2, 3, 8, 8)
    assert images.abs().max() < 1


def test_third_party_options_are_checked_against_its_constructor(third_party, write_recipe):
    path = write_recipe(
        "acme_bad.toml",
        """
        name = "acme"
        [model.generator]
        name = "acme_linear"
        resolution = "large"
        num_layers = 3
        """,
    )
    with pytest.raises(StyleTalkerError) as raised:
        load_recipe(path, registries=build_registries())
    problems = raised.value.problems
    assert any(p.startswith("model.generator.resolution: expected an integer, got string 'large'") for p in problems)
    assert any(p.startswith("model.generator.num_layers: option not accepted by generator 'acme_linear'") for p in problems)


def test_plugins_command_lists_the_third_party_generator(third_party):
    environment = {**os.environ, "PYTHONPATH": str(third_party)}
    result = subprocess.run(
        [sys.executable, "-m", "styletalker_core.cli.main", "plugins", "--json"],
        capture_output=True, text=True, env=environment, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert {
        "kind": "generator", "name": "acme_linear", "package": "acme-talking-gan", "version": "3.1.4",
        "module": "acme_gan.plugin", "description": "Third-party linear generator.",
    } in records
    assert any(r["name"] == "jsonl" and r["package"] == "styletalker" for r in records)


def test_third_party_reusing_a_builtin_name_fails_naming_both_packages(site):
    install_fake_distribution(site, "copycat-loggers", "0.2.0", "copycat", {"plugin.py": DUPLICATE_LOGGER_PLUGIN})
    with pytest.raises(RegistryError) as raised:
        build_registries()
    message = str(raised.value)
    assert "logger 'jsonl' is registered twice" in message
    assert f"styletalker {importlib.metadata.version('styletalker')}" in message
    assert "copycat-loggers 0.2.0 (copycat.plugin)" in message


BROKEN_PLUGINS = {
    "import fails": ("import not_a_module_anywhere\n", ["ModuleNotFoundError", "not_a_module_anywhere"]),
    "misspelled hook": (
        "@hookimpl\ndef styletalker_registr(registrar):\n    pass\n",
        ["does not follow the styletalker hook specs", "unknown hook 'styletalker_registr'"],
    ),
    "wrong hook signature": (
        "@hookimpl\ndef styletalker_register(reg):\n    pass\n",
        ["does not follow the styletalker hook specs", "{'reg'}"],
    ),
    "hook raises": (
        "@hookimpl\ndef styletalker_register(registrar):\n    raise ImportError('optional dependency foo is missing')\n",
        ["failed while registering", "ImportError: optional dependency foo is missing"],
    ),
    "unknown kind": (
        "@hookimpl\ndef styletalker_register(registrar):\n    registrar.register('loger', 'mine', object)\n",
        ["registers 'mine' under unknown component kind 'loger'; closest kinds: logger"],
    ),
}


@pytest.mark.parametrize("case", list(BROKEN_PLUGINS))
def test_broken_plugin_is_a_user_error_naming_the_problem(site, case):
    body, fragments = BROKEN_PLUGINS[case]
    plugin = "from styletalker_core.plugin_host import hookimpl\n\n" + body
    install_fake_distribution(site, "broken-plugin", "1.0", "broken", {"plugin.py": plugin})
    with pytest.raises(StyleTalkerError) as raised:
        build_registries()
    message = str(raised.value)
    for fragment in fragments:
        assert fragment in message
    assert "broken-plugin 1.0" in message


def test_registries_are_built_once_and_can_be_reset():
    reset_registries()
    first = get_registries()
    assert get_registries() is first
    reset_registries()
    assert get_registries() is not first


def test_every_hook_is_documented_and_typed():
    hooks = [obj for name, obj in vars(hookspecs).items() if name.startswith("styletalker_") and callable(obj)]
    assert hooks, "no hook specs found"
    for hook in hooks:
        assert inspect.getdoc(hook), f"{hook.__name__} has no docstring"
        signature = inspect.signature(hook)
        assert all(p.annotation is not inspect.Parameter.empty for p in signature.parameters.values())
    # the documented kinds are the real ones
    assert "KINDS" in inspect.getdoc(hookspecs.styletalker_register)
    assert set(KINDS) >= {"generator", "logger"}
