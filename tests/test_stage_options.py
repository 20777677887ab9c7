"""Stage options as nested typed tables: validation with full paths, --set into them, the typed
configs the stages get, one error line for a renamed option, and stored recipes with the old
names (run folders, model files) upgraded to the new ones."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from styletalker_core.data.audio_augment import AudioAugmentation
from styletalker_core.plugin_host import get_registries
from styletalker_core.recipe import load_recipe, structure, unstructure, validate_raw
from styletalker_core.recipe.options import structure_options, upgrade_options, upgrade_recipe
from styletalker_core.registry import ComponentSpec, build_component
from styletalker_core.registry.components import parameter_annotations
from styletalker_domain.objective import ObjectiveConfig, RenderObjectiveConfig
from styletalker_motion.stage_main import MainObjectiveConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def registries():
    return get_registries()


def recipe_with(stages: dict) -> dict:
    return {"name": "options", "stages": stages}


def test_problems_inside_nested_tables_name_their_full_path(registries):
    stages = {
        "encoder": {"name": "e4e_encoder", "steps": 2,
                    "objective": {"mouth_weight": "a lot", "mouthh": 1, "perceptual_kind": "vgg"}},
        "main": {"name": "styletalker_main", "steps": 2, "objective": {"sync_weight": True},
                 "audio_augment": {"probability": 2.0, "nosie": 1}},
    }
    problems = validate_raw(recipe_with(stages), registries)
    assert sorted(problems) == sorted([
        "stages.encoder.objective.mouth_weight: expected a number, got string 'a lot'",
        "stages.encoder.objective.mouthh: unknown field; closest fields: mouth_weight",
        "stages.encoder.objective.perceptual_kind: expected one of 'auto', 'lpips', 'ms_ssim', got string 'vgg'",
        "stages.main.objective.sync_weight: expected a number, got boolean True",
        "stages.main.audio_augment.nosie: unknown field; closest fields: noise",
        "stages.main.audio_augment.probability: audio_augment.probability must be a probability in [0, 1], got 2.0",
    ])


@pytest.mark.parametrize("stage, old, message", [
    ("e4e_encoder", "mouth",
     "stages.s.mouth: renamed to stages.s.objective.mouth_weight (mouth_weight in the table [stages.s.objective])"),
    ("label_render", "readings_oracle", "stages.s.readings_oracle: renamed to stages.s.objective.readings_oracle "
                                        "(readings_oracle in the table [stages.s.objective])"),
    ("e4e_encoder", "factors", "stages.s.factors: renamed to stages.s.factors_weight"),
    ("autoencoder", "adversarial", "stages.s.adversarial: renamed to stages.s.adversarial_weight"),
    ("styletalker_main", "rec_weight",
     "stages.s.rec_weight: renamed to stages.s.objective.l1_weight (l1_weight in the table [stages.s.objective])"),
    ("styletalker_main", "perceptual", "stages.s.perceptual: renamed to stages.s.objective.perceptual_kind "
                                       "(perceptual_kind in the table [stages.s.objective])"),
])
def test_an_old_option_name_is_one_line_naming_the_new_one(registries, stage, old, message):
    value = "lpips" if old == "perceptual" and stage == "styletalker_main" else 1.0
    assert validate_raw(recipe_with({"s": {"name": stage, "steps": 2, old: value}}), registries) == [message]


def test_set_reaches_into_nested_tables_with_their_types(registries):
    recipe = load_recipe("domain_synthetic_64", ["stages.encoder.objective.mouth_weight=2",
                                                 "stages.encoder.objective.lpips_weights=true",
                                                 "stages.render.objective.perceptual_kind=ms_ssim"], registries)
    objective = recipe.stages["encoder"].options["objective"]
    assert objective["mouth_weight"] == 2.0 and isinstance(objective["mouth_weight"], float)
    assert objective["lpips_weights"] == "true"  # a path field keeps the text
    assert recipe.stages["render"].options["objective"]["perceptual_kind"] == "ms_ssim"
    main = load_recipe("synthetic_64", ["stages.main.audio_augment.probability=1"], registries)
    assert main.stages["main"].options["audio_augment"]["probability"] == 1.0


def test_stages_get_typed_configs_with_their_own_defaults(registries):
    def build(name: str, **options):
        return build_component(registries, "stage", ComponentSpec(name, options))

    encoder = build("e4e_encoder", objective={"mouth_weight": 2, "readings_factors": ["eye_open"]})
    assert encoder.objective_config == ObjectiveConfig(mouth_weight=2.0, readings_factors=["eye_open"])
    assert isinstance(encoder.objective_config.mouth_weight, float)
    assert (encoder.objective_config.latent_weight, encoder.objective_config.delta_weight) == (0.001, 0.0002)
    render = build("label_render", objective={"eyes_weight": 1.0})
    assert isinstance(render.objective_config, RenderObjectiveConfig)
    assert (render.objective_config.latent_weight, render.objective_config.delta_weight) == (0.0, 0.0)
    main = build("styletalker_main", audio_augment={"noise": 1.0})
    assert main.objective == MainObjectiveConfig()
    weights = main.objective
    assert (weights.perceptual_weight, weights.latent_weight, weights.sync_weight) == (1.0, 1.0, 0.1)
    assert main.audio_augment == AudioAugmentation(noise=1.0)
    assert build("styletalker_main", audio_augment=AudioAugmentation(noise=0.5)).audio_augment.noise == 0.5
    # the autoencoder adds three options to the encoder's and lists them all once
    joint = build("autoencoder", adversarial_weight=0.1, objective={"eyes_weight": 3.0}, eval_items=3)
    assert (joint.adversarial_weight, joint.objective_config.eyes_weight, joint.eval_items) == (0.1, 3.0, 3)
    accepted = parameter_annotations(registries["stage"].get("autoencoder"))
    encoder_options = parameter_annotations(registries["stage"].get("e4e_encoder"))
    assert set(accepted) == set(encoder_options) | {"adversarial_weight", "r1_gamma", "r1_interval"}
    assert accepted["factors_weight"].annotation is float
    assert accepted["factors_weight"].kind is inspect.Parameter.KEYWORD_ONLY
    with pytest.raises(ValueError, match=r"objective: unknown option\(s\) mouth; known: .*mouth_weight"):
        structure_options(ObjectiveConfig, {"mouth": 1.0}, "objective")
    with pytest.raises(ValueError, match=r"objective\.sync_max_offset"):
        structure_options(MainObjectiveConfig, {"sync_max_offset": "five"}, "objective")


# -- recipes written before the renaming ---------------------------------------------------------

OLD_DOMAIN_STAGES = {  # as checkpoints/synthetic_64_domain.safetensors stores them
    "encoder": {"name": "e4e_encoder", "steps": 8000, "l1": 1.0, "edges": 1.0, "detail": 30.0, "mouth": 10.0,
                "readings_oracle": "checkpoints/oracle_synthetic_loss.safetensors", "factors": 1.0,
                "factor_labels": ["mouth_open"], "perceptual": 0.2, "latent": 0.001, "eval_items": 64},
    "main": {"name": "styletalker_main", "steps": 10, "rec_weight": 0.5, "perceptual": "ms_ssim", "eyes_weight": 3.0,
             "kl_warmup_steps": 300, "audio_augment": {"probability": 0.8}},
}


def test_stored_recipes_with_the_old_names_are_upgraded(registries):
    upgraded = upgrade_recipe(recipe_with(OLD_DOMAIN_STAGES), registries)
    assert upgraded["stages"]["encoder"] == {
        "name": "e4e_encoder", "steps": 8000, "factors_weight": 1.0, "factor_labels": ["mouth_open"], "eval_items": 64,
        "objective": {"l1_weight": 1.0, "edges_weight": 1.0, "detail": 30.0, "mouth_weight": 10.0,
                      "readings_oracle": "checkpoints/oracle_synthetic_loss.safetensors", "perceptual_weight": 0.2,
                      "latent_weight": 0.001}}
    assert upgraded["stages"]["main"] == {
        "name": "styletalker_main", "steps": 10, "kl_warmup_steps": 300, "audio_augment": {"probability": 0.8},
        "objective": {"l1_weight": 0.5, "perceptual_kind": "ms_ssim", "eyes_weight": 3.0}}
    assert validate_raw(upgraded, registries) == []
    assert OLD_DOMAIN_STAGES["encoder"]["mouth"] == 10.0  # the stored recipe itself is left alone
    # an option set under both names keeps the new one
    assert upgrade_options({"mouth": 1.0, "objective": {"mouth_weight": 2.0}}, {"mouth": "objective.mouth_weight"}) == \
        {"objective": {"mouth_weight": 2.0}}


@pytest.mark.skipif(not (ROOT / "checkpoints/synthetic_64_model.safetensors").is_file(), reason="no shipped model")
def test_the_shipped_models_recipes_load_under_the_new_names(registries):
    from styletalker_core.ablate import model_recipe

    model = model_recipe(ROOT / "checkpoints/synthetic_64_model.safetensors", [], registries)
    main = model.stages["main"].options
    assert main["objective"] == {"sync_weight": 0.1, "sync_max_offset": 5, "kl_weight": 0.01, "eyes_weight": 3.0}
    assert "eyes_weight" not in main and main["lip_warmup_steps"] == 500
    domain = model_recipe(ROOT / "checkpoints/synthetic_64_domain.safetensors", [], registries)
    assert domain.stages["encoder"].options["objective"]["mouth_weight"] == 10.0
    assert domain.stages["encoder"].options["factors_weight"] == 1.0


def test_a_run_folder_written_with_the_old_names_is_continued(tmp_path, registries):
    from styletalker_core.errors import StyleTalkerError
    from styletalker_core.recipe.toml_writer import dumps
    from styletalker_core.train.pipeline import _check_run_recipe

    def recipe(encoder: dict):
        return structure(upgrade_recipe(recipe_with({"encoder": encoder}), registries), registries)

    current = recipe(OLD_DOMAIN_STAGES["encoder"])
    stored = unstructure(current)  # as an earlier version wrote it: the flat old names
    table = {k: v for k, v in stored["stages"]["encoder"].items() if k not in ("objective", "factors_weight")}
    stored["stages"]["encoder"] = {**table, **OLD_DOMAIN_STAGES["encoder"]}
    run = tmp_path / "run"
    (run / "encoder").mkdir(parents=True)
    (run / "encoder" / "done.json").write_text(json.dumps({"roles": ["generator", "image_encoder"]}))
    (run / "recipe.toml").write_text(dumps(stored))
    _check_run_recipe(run, current, registries)  # the same configuration: the finished stage is kept
    assert (run / "encoder" / "done.json").is_file()
    changed = recipe({**OLD_DOMAIN_STAGES["encoder"], "mouth": 3.0})
    with pytest.raises(StyleTalkerError, match=r"stage encoder .*differs in: stages.encoder.objective.mouth_weight"):
        _check_run_recipe(run, changed, registries)
