"""Registries: one per kind, duplicate and unknown names, interface checks, building components."""

from __future__ import annotations

from typing import Annotated

import pytest
import torch
from conftest import TEST_ORIGIN, TinyGenerator
from torch import nn

from styletalker_core.errors import ComponentError, OptionValueError, RegistryError
from styletalker_core.registry import KINDS, ComponentOf, ComponentSpec, Origin, Registries, build_component, closest_names


def test_every_kind_has_a_registry_of_that_kind():
    registries = Registries()
    assert registries.kinds() == list(KINDS)
    for name, kind in KINDS.items():
        registry = registries[name]
        assert registry.kind is kind
        assert len(registry) == 0
    # the kinds the issue names are all there
    for required in ("generator", "image_encoder", "audio_encoder", "lipsync_discriminator", "motion_vae",
                     "prior", "flow", "dataset", "metric", "logger"):
        assert required in KINDS


def test_unknown_kind_names_the_closest_kind():
    with pytest.raises(RegistryError, match=r"unknown component kind 'genrator'; closest kinds: generator"):
        Registries()["genrator"]


def test_duplicate_name_fails_naming_both_origins():
    registries = Registries()
    first = Origin("first-pkg", "1.0", "first_pkg.plugin")
    second = Origin("second-pkg", "2.5", "second_pkg.plugin")
    registries["generator"].register("shared", TinyGenerator, first)
    with pytest.raises(RegistryError) as raised:
        registries["generator"].register("shared", TinyGenerator, second)
    message = str(raised.value)
    assert "generator 'shared' is registered twice" in message
    assert "first-pkg 1.0 (first_pkg.plugin)" in message
    assert "second-pkg 2.5 (second_pkg.plugin)" in message
    # the first registration is kept
    assert registries["generator"].get("shared").origin == first


def test_same_name_in_different_kinds_is_allowed():
    registries = Registries()
    registries["generator"].register("tiny", TinyGenerator, TEST_ORIGIN)
    registries["stage"].register("tiny", lambda: None, TEST_ORIGIN)
    assert registries["generator"].names() == registries["stage"].names() == ["tiny"]


def test_unknown_name_lists_closest_names(registries):
    with pytest.raises(RegistryError) as raised:
        registries["generator"].get("tiny_lineer")
    assert str(raised.value) == "unknown generator 'tiny_lineer'; closest registered names: tiny_linear"


def test_unknown_name_far_from_every_name_lists_all_names():
    registries = Registries()
    for name in ("stylegan2", "stylegan3"):
        registries["generator"].register(name, TinyGenerator, TEST_ORIGIN)
    with pytest.raises(RegistryError) as raised:
        registries["generator"].get("xyz")
    assert str(raised.value) == "unknown generator 'xyz'; valid registered names: stylegan2, stylegan3"


def test_unknown_name_in_an_empty_registry_says_none_is_registered():
    with pytest.raises(RegistryError, match="no flow is registered"):
        Registries()["flow"].get("maf")


def test_closest_names_orders_by_similarity():
    assert closest_names("stylegan2", ["stylegan3", "stylegan2x", "e4e"]) == ["stylegan2x", "stylegan3"]
    assert closest_names("zzz", ["stylegan2"]) == []


def test_factory_not_deriving_from_the_interface_is_refused():
    registries = Registries()
    with pytest.raises(RegistryError) as raised:
        registries["generator"].register("linear", nn.Linear, TEST_ORIGIN)
    message = str(raised.value)
    assert "generator 'linear'" in message and "styletalker-tests 0.0.0" in message
    assert "Linear does not derive from styletalker_core.interfaces.generator.Generator" in message
    assert "linear" not in registries["generator"]


def test_function_factory_building_the_wrong_type_is_refused_at_build():
    registries = Registries()
    registries["generator"].register("fake", lambda: nn.Linear(2, 2), TEST_ORIGIN)
    with pytest.raises(RegistryError, match="built a Linear, which does not implement Generator"):
        registries.build("generator", "fake")


@pytest.mark.parametrize("bad_name", ["", "has space", "dotted.name", "slash/name"])
def test_names_must_be_plain_identifiers(bad_name):
    with pytest.raises(RegistryError, match="use letters, digits"):
        Registries()["generator"].register(bad_name, TinyGenerator, TEST_ORIGIN)


def test_description_defaults_to_the_docstring_summary_and_example_options_are_kept():
    registries = Registries()
    entry = registries["generator"].register("tiny", TinyGenerator, TEST_ORIGIN, example_options={"resolution": 2})
    assert entry.description == "W+ codes [b, l, w] -> images [b, 3, r, r]: one linear layer and tanh."
    assert entry.example_options == {"resolution": 2}
    assert list(registries.entries()) == [entry]


def test_description_summary_joins_a_wrapped_first_paragraph():
    class Wrapped(TinyGenerator):
        """A generator whose summary is long enough
        to wrap onto a second line.

        Details that are not part of the summary.
        """

    entry = Registries()["generator"].register("wrapped", Wrapped, TEST_ORIGIN)
    assert entry.description == "A generator whose summary is long enough to wrap onto a second line."


def test_build_component_passes_options_and_records_the_resolved_spec(registries):
    spec = ComponentSpec("tiny_linear", {"resolution": 8}, weights="w.safetensors")
    generator = build_component(registries, "generator", spec, num_ws=3)
    assert isinstance(generator, TinyGenerator)
    assert (generator.resolution, generator.num_ws, generator.w_dim) == (8, 3, 8)
    images = generator.synthesis(torch.randn(2, 3, 8))
    assert images.shape == (2, 3, 8, 8) and images.abs().max() <= 1
    assert generator.component_spec == ComponentSpec(
        "tiny_linear", {"resolution": 8, "num_ws": 3}, weights="w.safetensors", kind="generator"
    )


def test_building_with_an_option_the_constructor_does_not_take_names_it(registries):
    with pytest.raises(RegistryError) as raised:
        registries.build("generator", "tiny_linear", colour=3)
    assert str(raised.value) == (
        "generator 'tiny_linear' from styletalker-tests 0.0.0 (tests.conftest): "
        "got an unexpected keyword argument 'colour'"
    )
    with pytest.raises(RegistryError, match=r"prior 'tiny_prior' .*missing a required argument: 'flow'"):
        build_component(registries, "prior", ComponentSpec("tiny_prior"))


def test_build_component_refuses_a_recipe_option_that_conflicts_with_a_wired_one(registries):
    spec = ComponentSpec("tiny_linear", {"num_ws": 4})
    with pytest.raises(RegistryError, match=r"option num_ws=4 conflicts with 3"):
        build_component(registries, "generator", spec, num_ws=3)
    # the same value is fine
    assert build_component(registries, "generator", spec, num_ws=4).num_ws == 4


def test_build_component_drops_wired_options_the_factory_does_not_take(registries):
    generator = build_component(registries, "generator", ComponentSpec("tiny_linear"), not_an_option=1)
    assert "not_an_option" not in generator.component_spec.options


def test_build_component_turns_nested_tables_into_specs_and_builds_them(registries):
    spec = ComponentSpec("tiny_prior", {"z_dim": 3, "flow": {"name": "tiny_affine", "hidden": 5}})
    prior = build_component(registries, "prior", spec, feature_dim=4)
    assert prior.component_spec.options["flow"] == ComponentSpec("tiny_affine", {"hidden": 5})
    assert (prior.flow.dim, prior.flow.context_dim) == (3, 4)
    z, _ = prior.sample(torch.randn(2, 5, 4))
    assert z.shape == (2, 5, 3)
    assert prior.log_prob(z, torch.randn(2, 5, 4)).shape == (2, 5)


def test_component_spec_table_round_trip():
    table = {"name": "tiny_prior", "weights": "p.safetensors", "z_dim": 3, "flow": {"name": "tiny_affine"}}
    spec = ComponentSpec.from_table(table)
    assert spec.name == "tiny_prior" and spec.weights == "p.safetensors"
    assert spec.options == {"z_dim": 3, "flow": {"name": "tiny_affine"}}
    assert spec.to_table() == table


def test_nested_specs_reach_the_factory_bound_to_the_registries_and_the_recipe_path(registries):
    seen = {}

    class Recording(TinyGenerator):
        def __init__(self, flow: Annotated[ComponentSpec, ComponentOf("flow")] = ComponentSpec("tiny_affine"),
                     resolution: int = 4) -> None:
            super().__init__(resolution=resolution)
            seen["flow"] = flow
            self.flow = flow.build(dim=2, context_dim=3)

    registries["generator"].register("recording", Recording, TEST_ORIGIN)
    build_component(registries, "generator", ComponentSpec("recording", {"flow": {"name": "tiny_affine", "hidden": 5}}),
                    recipe_path="model.generator")
    bound = seen["flow"]
    assert bound == ComponentSpec("tiny_affine", {"hidden": 5}, kind="flow")
    assert bound.registries is registries and bound.path == "model.generator.flow"
    build_component(registries, "generator", ComponentSpec("recording"))  # the default: bound, no recipe path
    assert seen["flow"].registries is registries and seen["flow"].path is None
    with pytest.raises(RegistryError, match="'tiny_affine' is not bound to registries; build the component"):
        Recording()


class Strict(TinyGenerator):
    """Refuses options the way constructors do: a named option, a plain ValueError, a TypeError, or a bug."""

    def __init__(self, resolution: int = 4, mode: str = "ok") -> None:
        if mode == "named":
            raise OptionValueError("resolution", resolution, "must be a power of two")
        if mode == "value":
            raise ValueError("no such mode")
        super().__init__(resolution=resolution + 0)  # TypeError for a resolution that is text
        if mode == "bug":
            self.missing_attribute.append(1)  # AttributeError: a bug, not a bad option


@pytest.fixture
def strict(registries):
    registries["generator"].register("strict", Strict, TEST_ORIGIN)
    return registries


@pytest.mark.parametrize(("options", "at_path", "without_path"), [
    ({"resolution": 6, "mode": "named"}, "model.generator.resolution = 6: must be a power of two",
     "generator 'strict' from styletalker-tests 0.0.0 (tests.conftest): option resolution = 6: must be a power of two"),
    ({"mode": "value"}, "model.generator: cannot be built: ValueError: no such mode",
     "generator 'strict' from styletalker-tests 0.0.0 (tests.conftest): cannot be built: ValueError: no such mode"),
    ({"resolution": "8"}, 'model.generator: cannot be built: TypeError: can only concatenate str (not "int") to str',
     "generator 'strict' from styletalker-tests 0.0.0 (tests.conftest): cannot be built: TypeError: can only "
     'concatenate str (not "int") to str'),
])
def test_a_constructor_refusing_an_option_is_a_component_error_at_the_recipe_path(strict, options, at_path, without_path):
    with pytest.raises(ComponentError) as raised:
        build_component(strict, "generator", ComponentSpec("strict", options), recipe_path="model.generator")
    assert str(raised.value) == at_path
    assert isinstance(raised.value, RegistryError) and isinstance(raised.value, ValueError)  # callers catching either
    with pytest.raises(ComponentError) as raised:
        strict.build("generator", "strict", **options)
    assert str(raised.value) == without_path


def test_a_constructor_bug_is_not_wrapped(strict):
    with pytest.raises(AttributeError, match="missing_attribute"):
        build_component(strict, "generator", ComponentSpec("strict", {"mode": "bug"}), recipe_path="model.generator")


def test_a_nested_components_error_keeps_its_own_path(registries):
    spec = ComponentSpec("tiny_prior", {"z_dim": 3, "flow": {"name": "tiny_affine", "hidden": "five"}})
    with pytest.raises(ComponentError) as raised:
        build_component(registries, "prior", spec, recipe_path="model.prior", feature_dim=4)
    assert str(raised.value).startswith("model.prior.flow: cannot be built: TypeError: ")
