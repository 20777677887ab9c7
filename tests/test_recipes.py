"""Recipes: extends inheritance, --set overrides with type conversion, validation messages with
field paths, and the TOML written by ``recipes show`` reading back to the same recipe."""

from __future__ import annotations

import tomllib

import pytest

from styletalker_core.errors import RecipeError
from styletalker_core.recipe import Recipe, load_recipe, structure, unstructure, validate_raw
from styletalker_core.recipe.toml_writer import dumps
from styletalker_core.registry import ComponentSpec

BASE = """
name = "base"
description = "the base recipe"
seed = 1

[runtime]
device = "cpu"
num_threads = 2

[model.generator]
name = "tiny_linear"
resolution = 8
num_ws = 2

[stages.fit]
name = "tiny_stage"
steps = 100
lr = 0.01
betas = [0.5, 0.9]
frames = 4

[[loggers]]
name = "jsonl"
filename = "base.jsonl"
"""


def problems_of(raw_text: str, registries) -> list[str]:
    return validate_raw(tomllib.loads(raw_text), registries)


# -- extends ---------------------------------------------------------------------------------


def test_child_overrides_scalars_merges_tables_and_replaces_lists(write_recipe, registries):
    write_recipe("base.toml", BASE)
    child = write_recipe(
        "child.toml",
        """
        extends = "base.toml"
        name = "child"

        [runtime]
        deterministic = true

        [model.generator]
        resolution = 16

        [stages.fit]
        betas = [0.0, 0.99]

        [[loggers]]
        name = "jsonl"
        filename = "child.jsonl"
        """,
    )
    recipe = load_recipe(child, registries=registries)
    assert (recipe.name, recipe.description, recipe.seed) == ("child", "the base recipe", 1)
    # tables merge key by key
    assert (recipe.runtime.device, recipe.runtime.num_threads, recipe.runtime.deterministic) == ("cpu", 2, True)
    assert recipe.model["generator"] == ComponentSpec("tiny_linear", {"resolution": 16, "num_ws": 2})
    assert recipe.stages["fit"].steps == 100 and recipe.stages["fit"].betas == (0.0, 0.99)
    assert recipe.stages["fit"].options == {"frames": 4}
    # lists are replaced, not appended
    assert recipe.loggers == [ComponentSpec("jsonl", {"filename": "child.jsonl"})]


def test_extends_chain_of_three_applies_parents_first(write_recipe, registries):
    write_recipe("a.toml", BASE)
    write_recipe("sub/b.toml", 'extends = "../a.toml"\nseed = 2\ndescription = "from b"\n')
    c = write_recipe("sub/c.toml", 'extends = "b.toml"\nseed = 3\n[model.generator]\nnum_ws = 5\n')
    recipe = load_recipe(c, registries=registries)
    assert (recipe.name, recipe.seed, recipe.description) == ("base", 3, "from b")
    assert recipe.model["generator"].options == {"resolution": 8, "num_ws": 5}


def test_extends_cycle_is_reported(write_recipe, registries):
    write_recipe("x.toml", 'extends = "y.toml"\nname = "x"\n')
    write_recipe("y.toml", 'extends = "z.toml"\n')
    z = write_recipe("z.toml", 'extends = "x.toml"\n')
    with pytest.raises(RecipeError) as raised:
        load_recipe(z, registries=registries)
    assert raised.value.problems == ["extends: cycle z.toml -> x.toml -> y.toml -> z.toml"]


def test_extends_missing_parent_is_reported(write_recipe, registries):
    path = write_recipe("orphan.toml", 'extends = "nowhere.toml"\nname = "o"\n')
    with pytest.raises(RecipeError, match=r"extends: nowhere.toml not found next to orphan.toml"):
        load_recipe(path, registries=registries)


def test_invalid_toml_names_the_file(write_recipe, registries):
    path = write_recipe("broken.toml", "name = \n")
    with pytest.raises(RecipeError) as raised:
        load_recipe(path, registries=registries)
    assert raised.value.source == str(path) and raised.value.problems[0].startswith("not valid TOML")


# -- --set overrides --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("assignment", "read", "expected", "expected_type"),
    [
        ("seed=42", lambda r: r.seed, 42, int),
        ("runtime.num_threads=3", lambda r: r.runtime.num_threads, 3, int),
        ("sample.temperature=0.25", lambda r: r.sample.temperature, 0.25, float),
        ("stages.fit.lr=1e-4", lambda r: r.stages["fit"].lr, 1e-4, float),
        ("stages.fit.lr=1", lambda r: r.stages["fit"].lr, 1.0, float),
        ("sample.temperature=2", lambda r: r.sample.temperature, 2.0, float),
        ("runtime.deterministic=true", lambda r: r.runtime.deterministic, True, bool),
        ("sample.align=false", lambda r: r.sample.align, False, bool),
        ("description=a new description", lambda r: r.description, "a new description", str),
        ("name=2024", lambda r: r.name, "2024", str),  # a string field keeps digits as text
        ("runtime.precision=bf16", lambda r: r.runtime.precision, "bf16", str),
        ("stages.fit.betas=[0.1, 0.2]", lambda r: r.stages["fit"].betas, (0.1, 0.2), tuple),
        ("model.generator.resolution=32", lambda r: r.model["generator"].options["resolution"], 32, int),
        ("model.generator.label=007", lambda r: r.model["generator"].options["label"], "007", str),
        ("stages.fit.frames=9", lambda r: r.stages["fit"].options["frames"], 9, int),
        ("stages.fit.weights=[1.0, 0.5]", lambda r: r.stages["fit"].options["weights"], [1.0, 0.5], list),
        ("loggers.0.filename=123", lambda r: r.loggers[0].options["filename"], "123", str),
        ("notes.source=measured", lambda r: r.notes["source"], "measured", str),
    ],
)
def test_set_overrides_convert_by_the_field_type(write_recipe, registries, assignment, read, expected, expected_type):
    path = write_recipe("base.toml", BASE)
    recipe = load_recipe(path, [assignment], registries=registries)
    value = read(recipe)
    assert value == expected and type(value) is expected_type


def test_set_can_swap_a_component_and_add_a_table(write_recipe, registries):
    path = write_recipe("base.toml", BASE)
    recipe = load_recipe(
        path,
        ["model.prior.name=tiny_prior", "model.prior.flow.name=tiny_affine", "model.prior.flow.hidden=7",
         "data.num_workers=2"],
        registries=registries,
    )
    assert recipe.model["prior"] == ComponentSpec("tiny_prior", {"flow": {"name": "tiny_affine", "hidden": 7}})
    assert recipe.data.num_workers == 2


def test_set_later_override_wins(write_recipe, registries):
    path = write_recipe("base.toml", BASE)
    assert load_recipe(path, ["seed=5", "seed=6"], registries=registries).seed == 6


def test_set_value_of_the_wrong_type_is_reported_with_its_path(write_recipe, registries):
    path = write_recipe("base.toml", BASE)
    with pytest.raises(RecipeError) as raised:
        load_recipe(path, ["seed=many", "model.generator.resolution=big"], registries=registries)
    assert raised.value.problems == [
        "seed: expected an integer, got string 'many'",
        "model.generator.resolution: expected an integer, got string 'big'",
    ]


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("seed", r"'seed': expected path.to.field=value"),
        ("runtime..device=cpu", r"empty segment in the field path"),
        ("loggers.3.filename=x", r"loggers.3: no list item 3"),
        ("seed.value=1", r"seed: is a value, not a table"),
    ],
)
def test_malformed_set_is_reported(write_recipe, registries, assignment, message):
    path = write_recipe("base.toml", BASE)
    with pytest.raises(RecipeError, match=message):
        load_recipe(path, [assignment], registries=registries)


# -- validation ------------------------------------------------------------------------------


def test_base_recipe_is_valid(registries):
    assert problems_of(BASE, registries) == []


def test_unknown_field_names_its_path_and_the_closest_field(registries):
    problems = problems_of("seeed = 3\n" + BASE + "\n[sample]\ntemprature = 0.5\n", registries)
    assert problems == [
        "seeed: unknown field; closest fields: seed",
        "sample.temprature: unknown field; closest fields: temperature",
    ]


def test_wrong_type_names_the_field(registries):
    raw = BASE.replace("seed = 1", 'seed = "one"').replace("num_threads = 2", "num_threads = 2.5")
    assert problems_of(raw, registries) == [
        "seed: expected an integer, got string 'one'",
        "runtime.num_threads: expected an integer, got number 2.5",
    ]


def test_bool_is_not_an_integer(registries):
    assert problems_of(BASE.replace("seed = 1", "seed = true"), registries) == [
        "seed: expected an integer, got boolean True"
    ]


def test_table_where_a_value_is_expected_and_value_where_a_table_is_expected(registries):
    problems = problems_of('name = "x"\nseed = {a = 1}\nruntime = 3\n', registries)
    assert problems == ["seed: expected an integer, got table {'a': 1}", "runtime: expected a table, got 3"]


def test_missing_required_fields_are_named(registries):
    problems = problems_of('[stages.fit]\nname = "tiny_stage"\n', registries)
    assert problems == ["name: missing required field", "stages.fit.steps: missing required field"]


def test_validator_failures_name_the_field(registries):
    raw = BASE.replace('device = "cpu"', 'device = "gpu"').replace("num_threads = 2", "num_threads = -1")
    raw = raw.replace("steps = 100", "steps = 0")
    problems = problems_of(raw, registries)
    assert problems[0] == "runtime.device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"
    assert problems[1].startswith("runtime.num_threads: ") and "-1" in problems[1]
    assert problems[2].startswith("stages.fit.steps: ") and "0" in problems[2]
    assert len(problems) == 3


def test_literal_field_lists_the_choices(registries):
    problems = problems_of(BASE + '\n[sample]\nmotion_fit = "wrap"\n', registries)
    assert problems == ["sample.motion_fit: expected one of 'loop', 'trim', got string 'wrap'"]


def test_unknown_component_name_lists_the_closest_names(registries):
    problems = problems_of(BASE.replace('name = "tiny_linear"', 'name = "tiny_linaer"'), registries)
    assert problems == ["model.generator.name: unknown generator 'tiny_linaer'; closest registered names: tiny_linear"]


def test_unknown_logger_in_a_list_names_its_index(registries):
    problems = problems_of(BASE + '\n[[loggers]]\nname = "tensorbord"\n', registries)
    assert problems == ["loggers[1].name: unknown logger 'tensorbord'; valid registered names: jsonl"]


def test_unknown_stage_plugin_is_named(registries):
    problems = problems_of(BASE.replace('name = "tiny_stage"', 'name = "tiny_stag"'), registries)
    assert problems == ["stages.fit.name: unknown stage 'tiny_stag'; closest registered names: tiny_stage"]


def test_option_not_accepted_by_the_constructor_names_field_and_closest_option(registries):
    problems = problems_of(BASE.replace("num_ws = 2", "num_w = 2"), registries)
    assert problems == [
        "model.generator.num_w: option not accepted by generator 'tiny_linear' (TinyGenerator); "
        "closest options: num_ws"
    ]


def test_option_of_the_wrong_type_names_the_option(registries):
    raw = BASE.replace("resolution = 8", 'resolution = "8"').replace('filename = "base.jsonl"', "filename = 5")
    problems = problems_of(raw, registries)
    assert problems == [
        "model.generator.resolution: expected an integer, got string '8'",
        "loggers[0].filename: expected a string, got integer 5",
    ]


def test_stage_options_are_checked_against_the_stage_factory(registries):
    raw = BASE.replace("frames = 4", 'frames = "four"\nlos = "l2"')
    problems = problems_of(raw, registries)
    assert problems == [
        "stages.fit.frames: expected an integer, got string 'four'",
        "stages.fit.los: option not accepted by stage 'tiny_stage' (tiny_stage); closest options: loss",
    ]


def test_nested_component_is_validated_with_its_path(registries):
    raw = BASE + '\n[model.prior]\nname = "tiny_prior"\nz_dim = 3\n[model.prior.flow]\nname = "tiny_afine"\n'
    assert problems_of(raw, registries) == [
        "model.prior.flow.name: unknown flow 'tiny_afine'; closest registered names: tiny_affine"
    ]
    raw = raw.replace('"tiny_afine"', '"tiny_affine"\nhidden = "wide"\ndepth = 2')
    assert problems_of(raw, registries) == [
        "model.prior.flow.hidden: expected an integer, got string 'wide'",
        "model.prior.flow.depth: option not accepted by flow 'tiny_affine' (TinyAffineFlow); "
        "valid options: context_dim, dim, hidden",
    ]
    raw = BASE + '\n[model.prior]\nname = "tiny_prior"\nflow = "tiny_affine"\n'
    assert problems_of(raw, registries) == [
        "model.prior.flow: expected a component table with a string 'name', got 'tiny_affine'"
    ]


def test_unknown_kind_names_the_field_and_closest_kind(registries):
    problems = problems_of(BASE + '\n[model.genrator]\nname = "tiny_linear"\n', registries)
    assert problems == ["model.genrator.kind: unknown component kind 'genrator'; closest kinds: generator"]
    explicit = BASE + '\n[model.second]\nkind = "flows"\nname = "tiny_affine"\n'
    assert problems_of(explicit, registries) == [
        "model.second.kind: unknown component kind 'flows'; closest kinds: flow"
    ]


def test_role_with_an_explicit_kind_is_checked_as_that_kind(registries):
    raw = BASE + '\n[model.teacher]\nkind = "generator"\nname = "tiny_linear"\nresolution = 4\n'
    assert problems_of(raw, registries) == []
    assert problems_of(raw.replace("resolution = 4", "resolutoin = 4"), registries) == [
        "model.teacher.resolutoin: option not accepted by generator 'tiny_linear' (TinyGenerator); "
        "closest options: resolution"
    ]


def test_weights_must_be_a_path(registries):
    raw = BASE.replace("num_ws = 2", "num_ws = 2\nweights = 3")
    assert problems_of(raw, registries) == ["model.generator.weights: expected a path string, got 3"]


def test_every_problem_is_reported_at_once(write_recipe, registries):
    raw = (
        BASE.replace("seed = 1", 'seed = "x"')
        .replace("num_ws = 2", "num_ws = 2\ncolour = 1")
        .replace('device = "cpu"', 'device = "tpu"')
        .replace('name = "tiny_stage"', 'name = "nope"')
    )
    path = write_recipe("many.toml", "unknown_top = 1\n" + raw)
    with pytest.raises(RecipeError) as raised:
        load_recipe(path, registries=registries)
    error = raised.value
    assert len(error.problems) == 5
    assert str(error).startswith(f"{path}: 5 problems: ")
    for field in ("unknown_top:", "seed:", "runtime.device:", "model.generator.colour:", "stages.fit.name:"):
        assert sum(p.startswith(field) for p in error.problems) == 1, field
        assert field in str(error)
    assert "\n" not in str(error)


# -- structure and round trip -----------------------------------------------------------------


def test_structured_recipe_has_typed_defaults(registries):
    recipe = structure(tomllib.loads('name = "minimal"'), registries)
    assert isinstance(recipe, Recipe)
    assert recipe.run_dir() == "runs/minimal"
    assert (recipe.runtime.device, recipe.sample.temperature, recipe.evaluate.clips) == ("auto", 1.0, 16)
    assert recipe.model == {} and recipe.loggers == []


def test_shown_toml_reads_back_to_the_same_recipe(write_recipe, registries):
    path = write_recipe("base.toml", BASE)
    overrides = [
        "model.prior.name=tiny_prior", "model.prior.flow.name=tiny_affine", 'description=quote " and \\ and é',
        "notes.measured={fid = 12.5, steps = [1, 2]}", "sample.temperature=0.7",
    ]
    recipe = load_recipe(path, overrides, registries=registries)
    text = dumps(unstructure(recipe))
    again = structure(tomllib.loads(text), registries)
    assert again == recipe
    assert again.description == 'quote " and \\ and é'
    # writing the re-read recipe gives the same text
    assert dumps(unstructure(again)) == text
