"""Stages declare the roles they consume and produce; ``recipes validate`` checks the order of a
recipe's stages against them and names the stage whose input nothing earlier provides."""

from __future__ import annotations

import pytest

from styletalker_core.cli.main import main
from styletalker_core.plugin_host import get_registries
from styletalker_core.recipe import load_recipe, structure
from styletalker_core.recipe.roles import missing_inputs, stage_order_problems, undeclared_outputs
from styletalker_core.registry import ComponentSpec, build_component


@pytest.fixture(scope="module")
def registries():
    return get_registries()


def stage(registries, name: str, **options):
    return build_component(registries, "stage", ComponentSpec(name, options))


def problems(registries, stages: dict, **model) -> list[str]:
    return stage_order_problems(structure({"name": "roles", "model": model, "stages": stages}, registries), registries)


LIPSYNC = {"name": "lipsync_pretrain", "steps": 1}
MAIN = {"name": "styletalker_main", "steps": 1}
DOMAIN = {"generator": {"name": "stylegan2", "weights": "g.safetensors"},
          "image_encoder": {"name": "e4e", "weights": "e.safetensors"}}


def test_the_built_in_stages_declare_their_roles(registries):
    assert stage(registries, "stylegan2_gan").produces() == ("generator", "discriminator")
    assert stage(registries, "label_render").consumes() == ()
    assert stage(registries, "e4e_encoder").consumes() == ("generator",)  # it inverts a frozen generator
    assert stage(registries, "autoencoder").consumes() == ()  # it trains the generator too
    assert stage(registries, "autoencoder").produces() == ("generator", "image_encoder")
    assert stage(registries, "lipsync_pretrain").produces() == ("lipsync_discriminator",)
    main_stage = stage(registries, "styletalker_main")
    assert main_stage.consumes() == ("generator", "image_encoder", "lipsync_discriminator")
    assert main_stage.produces() == ("lip_mapper", "motion_vae", "prior", "audio_encoder")
    tuned = stage(registries, "styletalker_main", objective={"sync_weight": 0.0, "adversarial_weight": 0.1},
                  train_generator=True, train_audio_encoder=False)
    assert tuned.consumes() == ("generator", "image_encoder")
    assert tuned.produces() == ("lip_mapper", "motion_vae", "prior", "generator", "discriminator")
    prior = stage(registries, "prior_only")
    assert prior.consumes() == ("generator", "image_encoder", "lip_mapper", "motion_vae")
    assert prior.produces() == ("prior",)


def test_a_stage_before_the_one_that_trains_its_input_is_named(registries):
    found = problems(registries, {"main": MAIN, "lipsync": LIPSYNC, "prior": {"name": "prior_only", "steps": 1}},
                     **DOMAIN)
    assert found == ["stages.main: needs trained lipsync_discriminator weights, which no earlier stage produces and "
                     "[model.lipsync_discriminator] has no weights file for; move it after stage lipsync, which "
                     "produces it"]
    assert problems(registries, {"lipsync": LIPSYNC, "main": MAIN, "prior": {"name": "prior_only", "steps": 1}},
                    **DOMAIN) == []


def test_an_input_nothing_provides_is_named_with_both_remedies(registries):
    [found] = problems(registries, {"main": MAIN}, **DOMAIN)
    assert found.endswith("add a stage that trains it before main, or give model.lipsync_discriminator.weights")
    assert problems(registries, {"main": {**MAIN, "objective": {"sync_weight": 0.0}}}, **DOMAIN) == []
    with_weights = {**DOMAIN, "lipsync_discriminator": {"name": "contrastive", "weights": "d.safetensors"}}
    assert problems(registries, {"main": MAIN}, **with_weights) == []
    disabled = problems(registries, {"lipsync": {**LIPSYNC, "enabled": False}, "main": MAIN}, **DOMAIN)
    assert [line.split(":")[0] for line in disabled] == ["stages.main"]  # a disabled stage produces nothing
    # a domain: the encoder inverts the GAN's generator; without the GAN it has nothing to invert
    gan_then_encoder = {"gan": {"name": "stylegan2_gan", "steps": 1}, "encoder": {"name": "e4e_encoder", "steps": 1}}
    assert problems(registries, gan_then_encoder) == []
    lines = problems(registries, {"encoder": {"name": "e4e_encoder", "steps": 1}, "main": MAIN,
                                  "prior": {"name": "prior_only", "steps": 1}})
    # the encoder's outputs serve main and prior; only what nothing trains is reported
    assert [line.split(" weights,")[0] for line in lines] == ["stages.encoder: needs trained generator",
                                                              "stages.main: needs trained lipsync_discriminator"]


def test_recipes_validate_reports_the_order_with_the_other_problems(capsys):
    assert main(["recipes", "validate", "--schema-only", "synthetic_64"]) == 0
    status = main(["recipes", "validate", "--schema-only", "synthetic_64", "--set", "stages.lipsync.enabled=false"])
    assert status == 2
    err = capsys.readouterr().err
    assert "  - stages.main: needs trained lipsync_discriminator weights" in err
    assert "1 problem(s)" in err


def test_training_warns_about_an_input_that_starts_untrained(registries):
    recipe = load_recipe("synthetic_64", ["model.generator.weights=", "stages.lipsync.enabled=false"], registries)
    main_stage = build_component(registries, "stage", ComponentSpec("styletalker_main",
                                                                     recipe.stages["main"].options))
    assert missing_inputs(main_stage, ["image_encoder"], recipe) == ["generator", "lipsync_discriminator"]
    assert missing_inputs(main_stage, ["generator", "lipsync_discriminator"], recipe) == []
    lipsync = stage(registries, "lipsync_pretrain")
    assert undeclared_outputs(lipsync, {"lipsync_discriminator": None}) is None
    assert "declares ['lipsync_discriminator'] but outputs() holds ['prior']" in undeclared_outputs(lipsync, {"prior": None})
