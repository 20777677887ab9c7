"""Checks of a recipe against the world it will run in (``styletalker recipes validate``).

The schema check (:mod:`styletalker_core.recipe.validate`) says whether a recipe is well formed;
these say whether it can run here, now:

- the device exists (``runtime.device`` and metrics' ``device`` options);
- every data table's folder exists, is a clip dataset, and serves clips for its split (at least
  one clip as long as its window); clips have the landmarks the table asks for; the latent cache
  it names exists for those clips (else: the ``styletalker data encode`` command that makes it);
- each stage's needs are served by its data: the per-frame labels its terms read (synthetic
  labels: ``styletalker data synth`` has them, ``styletalker preprocess`` does not), landmarks for
  its mouth and eye terms;
- every file the recipe names exists (``weights``, oracles, judges, LPIPS weights, ...), and a
  component's ``weights`` file holds that component with the shapes the recipe's options give;
- ``build``: every component (model, stages, metrics, loggers) can be constructed (on the meta
  device: no memory, no time); a constructor refusing an option is reported at the option's path
  (``model.prior.flow.steps = 0: must be at least 1``), any other exception from it is a bug and is
  raised, not reported.

Every problem is reported at once, one line each. A problem is an *error* (the run fails) or a
*note*: a data folder that does not exist yet (shipped recipes name data folders a fresh clone does
not have: ``styletalker data synth`` or ``styletalker preprocess`` makes them), and files only
``evaluate`` reads. ``strict`` makes notes errors.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import attrs

from styletalker_core.errors import ComponentError, StyleTalkerError, one_line
from styletalker_core.paths import find_project_file
from styletalker_core.recipe.schema import Recipe
from styletalker_core.registry.components import ComponentSpec, parameter_annotations
from styletalker_core.registry.registry import Registries

FILE_SUFFIXES = (".safetensors", ".pt", ".pth", ".pkl", ".bin", ".dat", ".ckpt")
FILE_KEYS = ("weights", "oracle", "checkpoint", "judge", "lpips_weights")
# model roles built first: their sizes are wired into the others (as the stages wire them)
WIRING_ORDER = ("generator", "audio_encoder", "motion_vae")


@attrs.frozen
class Problem:
    message: str
    note: bool = False  # a note: the run may still be fine (data to be made, evaluation-only files)


def _is_file_option(key: str, value: Any) -> bool:
    if not isinstance(value, str) or not value.strip():
        return False
    return (key in FILE_KEYS or key.endswith("_oracle") or key.endswith("_weights")
            or value.lower().endswith(FILE_SUFFIXES))


def resolve(value: str) -> Path:
    """A path as the components open it (:func:`styletalker_core.paths.find_project_file`)."""
    return find_project_file(os.path.expanduser(value))


def _file_options(options: dict[str, Any], path: str):  # noqa: ANN202 - iterator of (field, value)
    for key, value in options.items():
        field = f"{path}.{key}"
        if isinstance(value, ComponentSpec):
            if value.weights:
                yield f"{field}.weights", value.weights
            yield from _file_options(value.options, field)
        elif isinstance(value, dict):
            yield from _file_options(value, field)
        elif isinstance(key, str) and _is_file_option(key, value):
            yield field, value


# -- device -------------------------------------------------------------------------------------


def device_problems(recipe: Recipe) -> list[Problem]:
    from styletalker_core.devices import parse_device
    from styletalker_core.errors import StyleTalkerError

    found = []
    fields = [("runtime.device", recipe.runtime.device)]
    fields += [(f"evaluate.metrics.{i}.device", spec.options["device"]) for i, spec in enumerate(recipe.evaluate.metrics)
               if isinstance(spec.options.get("device"), str)]
    for field, value in fields:
        if value == "auto":
            continue
        try:
            parse_device(value, what=f"{field} =", hint=f"use --set {field}=cpu (or auto)")
        except StyleTalkerError as error:
            found.append(Problem(str(error)))
    return found


# -- data ---------------------------------------------------------------------------------------


def _records(root: Path) -> dict[str, dict[str, Any]]:
    from styletalker_core.data.shards import ShardReader

    return ShardReader(root).records


def data_problems(recipe: Recipe) -> list[Problem]:
    """Data folders, splits, landmarks and latent caches of ``[data.train]`` and ``[data.val]``."""
    from styletalker_core.data.shards import clips_in_split, latent_path, record_split
    from styletalker_core.errors import StyleTalkerError

    found: list[Problem] = []
    for table in ("train", "val"):
        spec: ComponentSpec | None = getattr(recipe.data, table)
        if spec is None or spec.name != "sharded":
            continue
        field = f"data.{table}"
        root_value = spec.options.get("root")
        if not isinstance(root_value, str) or not root_value:
            found.append(Problem(f"{field}.root: no data folder named; give one (--set data.root=FOLDER)"))
            continue
        root = resolve(root_value)
        if not root.exists():
            found.append(Problem(f"{field}.root = {root_value!r}: no such folder yet; make it with `styletalker preprocess "
                                 f"VIDEOS {root_value}` (real videos) or `styletalker data synth {root_value}` (synthetic)",
                                 note=True))
            continue
        try:
            records = _records(root)
        except (StyleTalkerError, OSError, ValueError, KeyError) as error:
            found.append(Problem(f"{field}.root = {root_value!r}: {error}"))
            continue
        split = spec.options.get("split")
        chosen = list(records)
        if isinstance(split, str) and split:
            chosen = clips_in_split(records, split, str(root))
        clip_ids = spec.options.get("clip_ids")
        if isinstance(clip_ids, list):
            chosen = [clip for clip in clip_ids if clip in records]
        if not chosen:
            present: dict[str, int] = {}
            for record in records.values():
                present[record_split(record) or "(none)"] = present.get(record_split(record) or "(none)", 0) + 1
            have = ", ".join(f"{name} {count}" for name, count in sorted(present.items()))
            found.append(Problem(f"{field}.split = {split!r}: no clip of {root_value} is in that split (it has: {have}); "
                                 "`styletalker preprocess` assigns train / val / test (--val, --test fractions)"))
            continue
        window = spec.options.get("window_frames", 25)
        if isinstance(window, int) and not any(records[c].get("num_frames", 0) >= window for c in chosen):
            longest = max(records[c].get("num_frames", 0) for c in chosen)
            found.append(Problem(f"{field}.window_frames = {window}: every clip of split {split!r} is shorter "
                                 f"(the longest has {longest} frames); lower it or use longer clips"))
        resolution = spec.options.get("resolution")
        if isinstance(resolution, int) and resolution > 0:
            sizes = {(records[c].get("height"), records[c].get("width")) for c in chosen}
            if sizes != {(resolution, resolution)}:
                found.append(Problem(f"{field}.resolution = {resolution}: the clips are {sorted(sizes)}"))
        if spec.options.get("landmarks") is True and not all(records[c].get("has_landmarks") for c in chosen):
            missing = sum(not records[c].get("has_landmarks") for c in chosen)
            found.append(Problem(f"{field}.landmarks = true: {missing} of {len(chosen)} clips of split {split!r} have no "
                                 "landmarks (`styletalker preprocess` and `data synth` store them)"))
        cache = spec.options.get("latent_cache")
        if isinstance(cache, str) and cache:
            uncached = [c for c in chosen if not latent_path(root, cache, c).is_file()]
            if uncached:
                weights = recipe.model["image_encoder"].weights if "image_encoder" in recipe.model else None
                checkpoint = weights or "MODEL.safetensors"
                found.append(Problem(f"{field}.latent_cache = {cache!r}: {len(uncached)} of {len(chosen)} clips of split "
                                     f"{split!r} have no cached latents; run `styletalker data encode {root_value} "
                                     f"--checkpoint {checkpoint} --cache {cache}` (or remove latent_cache: "
                                     "the frames are then encoded during training)"))
    return found


def _label_names(recipe: Recipe, table: str = "train") -> set[str] | None:
    """Labels every selected clip of ``data.<table>`` has (None when the folder cannot be read)."""
    from styletalker_core.data.shards import clips_in_split

    spec = getattr(recipe.data, table)
    if spec is None or spec.name != "sharded" or not isinstance(spec.options.get("root"), str):
        return None
    root = resolve(spec.options["root"])
    try:
        records = _records(root)
    except Exception:  # noqa: BLE001 - reported by data_problems
        return None
    split = spec.options.get("split")
    chosen = clips_in_split(records, split, str(root)) if isinstance(split, str) and split else list(records)
    if not chosen:
        return None
    names = [set(records[c].get("labels") or {}) for c in chosen]
    return set.intersection(*names)


def stage_needs(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """What a built-in stage reads from its data: {"labels": [(option, [names])], "landmarks": [option]},
    options named by their path in the stage table (``objective.mouth_weight``)."""
    objective = given if isinstance(given := options.get("objective"), dict) else {}

    def positive(table: dict[str, Any], key: str) -> bool:
        value = table.get(key, 0)
        return isinstance(value, (int, float)) and value > 0

    labels: list[tuple[str, list[str]]] = []
    landmarks: list[str] = []
    readings_default = ["mouth_open", "eye_open"]
    if name == "label_render":
        labels.append(("label_names", list(options.get("label_names") or
                                           ["identity", "pose", "eye_open", "mouth_open", "mouth_width"])))
    if name in ("e4e_encoder", "autoencoder") and positive(options, "factors_weight"):
        labels.append(("factors_weight", list(options.get("factor_labels") or ["mouth_open", "mouth_width", "eye_open"])))
    if name in ("label_render", "e4e_encoder", "autoencoder", "styletalker_main"):
        if positive(objective, "readings_weight"):
            labels.append(("objective.readings_weight", list(objective.get("readings_factors") or readings_default)))
        landmarks += [f"objective.{key}" for key in ("mouth_weight", "eyes_weight") if positive(objective, key)]
    return {"labels": labels, "landmarks": landmarks}


def stage_problems(recipe: Recipe) -> list[Problem]:
    """Stages whose terms need labels or landmarks their data do not serve."""
    found = []
    available = _label_names(recipe)
    train = recipe.data.train
    for stage_name, config in recipe.stages.items():
        if not config.enabled:
            continue
        needs = stage_needs(config.name, config.options)
        for option, names in needs["labels"]:
            if available is None:
                continue
            missing = [label for label in names if label not in available]
            if missing:
                found.append(Problem(
                    f"stages.{stage_name}.{option}: needs the per-frame labels {', '.join(missing)}, which the clips of "
                    f"data.train do not have ({', '.join(sorted(available)) or 'no labels'}; real videos from "
                    "`styletalker preprocess` have none); set it to 0 / remove it, or use a recipe without label terms "
                    "(recipes/real_gan_encoder.toml)"))
        if needs["landmarks"] and train is not None and train.options.get("landmarks") is not True:
            found.append(Problem(f"stages.{stage_name}.{needs['landmarks'][0]}: its region term needs the frames' "
                                 "landmarks; add landmarks = true to [data.train]"))
    return found


# -- files --------------------------------------------------------------------------------------


def _weights_shapes(path: Path, kind: str) -> tuple[str, dict[str, tuple[int, ...]]] | str:
    """(role, tensor name -> shape) of the one component of ``kind`` in the checkpoint, or a problem."""
    from safetensors import safe_open

    from styletalker_core.checkpoint import read_metadata

    try:
        records = read_metadata(path)["components"]
    except Exception as error:  # noqa: BLE001 - any unreadable file is one problem line
        return f"not a styletalker checkpoint ({error})"
    roles = [role for role, record in records.items() if record.get("kind") == kind]
    if len(roles) != 1:
        held = ", ".join(f"{r} ({v.get('kind')})" for r, v in records.items()) or "no components"
        return f"holds {held}, not one {kind}"
    role = roles[0]
    shapes = {}
    with safe_open(str(path), framework="pt") as handle:
        for key in handle.keys():  # noqa: SIM118 - a safetensors handle is not iterable
            if key.startswith(f"{role}."):
                shapes[key[len(role) + 1:]] = tuple(handle.get_slice(key).get_shape())
    return role, shapes


def _build(registries: Registries, kind: str, spec: ComponentSpec, path: str, device: str, **wired: Any) -> Any:
    """``spec`` built on ``device``, else on the CPU: a constructor that computes with tensors (buffers
    from data) fails on the meta device, so a failure there is settled by the CPU. There a
    StyleTalkerError is the recipe's problem; any other exception is a bug and propagates."""
    import torch

    from styletalker_core.registry.components import build_component

    if device != "cpu":
        try:
            with torch.device(device), warnings_quiet():
                return build_component(registries, kind, spec, recipe_path=path, **wired)
        except Exception:  # noqa: BLE001 - possibly the meta device's doing; the CPU decides below
            pass
    with torch.device("cpu"), warnings_quiet():
        return build_component(registries, kind, spec, recipe_path=path, **wired)


def _build_problem(error: StyleTalkerError, path: str) -> Problem:
    """One line at ``path``: a constructor's refusal already names its path (and option)."""
    message = one_line(str(error))
    return Problem(message if isinstance(error, ComponentError) else f"{path}: cannot be built: {message}")


def build_model(recipe: Recipe, registries: Registries, device: str = "meta") -> tuple[dict[str, Any], list[Problem]]:
    """Every ``[model.*]`` component built (on ``device``; on the CPU when its constructor computes
    with tensors, which the meta device cannot), sizes wired as the stages wire them (num_ws / w_dim
    from the generator, feature_dim from the audio encoder, z_dim from the motion VAE). A constructor
    that refuses its options is a problem at the option's path; any other exception is a bug and
    propagates."""
    built: dict[str, Any] = {}
    problems: list[Problem] = []
    wiring: dict[str, Any] = {}
    roles = sorted(recipe.model, key=lambda r: (WIRING_ORDER.index(r) if r in WIRING_ORDER else len(WIRING_ORDER), r))
    for role in roles:
        spec = recipe.model[role]
        kind = spec.kind or role
        try:
            accepted = parameter_annotations(registries[kind].get(spec.name))
            wired = {k: v for k, v in wiring.items() if k in accepted and k not in spec.options}
            module = _build(registries, kind, spec, f"model.{role}", device, **wired)
        except StyleTalkerError as error:
            problems.append(_build_problem(error, f"model.{role}"))
            continue
        built[role] = module
        for attribute in ("num_ws", "w_dim", "feature_dim", "z_dim"):
            if role in WIRING_ORDER and isinstance(getattr(module, attribute, None), int):
                wiring.setdefault(attribute, getattr(module, attribute))
    return built, problems


def build_other_components(recipe: Recipe, registries: Registries, device: str = "meta") -> list[Problem]:
    """The enabled stages, the evaluation metrics and the loggers built as the engines build them (the
    data tables are checked against their folders by :func:`data_problems`); problems as in
    :func:`build_model`."""
    items = [(f"stages.{name}", "stage", ComponentSpec(config.name, config.options))
             for name, config in recipe.stages.items() if config.enabled]
    items += [(f"evaluate.metrics[{index}]", "metric", spec) for index, spec in enumerate(recipe.evaluate.metrics)]
    items += [(f"loggers[{index}]", "logger", spec) for index, spec in enumerate(recipe.loggers)]
    problems = []
    for path, kind, spec in items:
        try:
            _build(registries, kind, spec, path, device)
        except StyleTalkerError as error:
            problems.append(_build_problem(error, path))
    return problems


@contextlib.contextmanager
def warnings_quiet():  # noqa: ANN201
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def file_problems(recipe: Recipe, registries: Registries, built: dict[str, Any] | None) -> list[Problem]:
    """Missing files, and ``weights`` files that do not hold the component with the recipe's shapes."""
    found = []
    run_dir = Path(recipe.run_dir()).resolve()
    fields: list[tuple[str, Any, bool]] = []  # (field, value, evaluation-only)
    for role, spec in recipe.model.items():
        if spec.weights:
            fields.append((f"model.{role}.weights", spec.weights, False))
        fields += [(f, v, False) for f, v in _file_options(spec.options, f"model.{role}")]
    for name, stage in recipe.stages.items():
        if stage.enabled:
            fields += [(f, v, False) for f, v in _file_options(stage.options, f"stages.{name}")]
    for index, spec in enumerate(recipe.evaluate.metrics):
        fields += [(f, v, True) for f, v in _file_options(spec.options, f"evaluate.metrics[{index}]")]
    for field, value, evaluation in fields:
        path = resolve(value)
        if path.exists():
            kind = _needed_kind(field, recipe)
            if kind and path.is_file() and path.suffix == ".safetensors":
                held = _kinds(path)
                if held is not None and kind not in held:
                    found.append(Problem(f"{field} = {value!r}: holds {', '.join(held) or 'no components'}, "
                                         f"not the {kind} this option needs"))
            continue
        if evaluation:
            made_here = run_dir in path.resolve().parents
            why = "this run writes it" if made_here else "`styletalker evaluate` needs it"
            found.append(Problem(f"{field} = {value!r}: no such file yet ({why})", note=True))
        else:
            found.append(Problem(f"{field} = {value!r}: no such file; convert published weights (`styletalker convert`), "
                                 "train them, or fix the path"))
    for role, spec in recipe.model.items():
        if not spec.weights or not resolve(spec.weights).is_file():
            continue
        path = resolve(spec.weights)
        shapes = _weights_shapes(path, spec.kind or role)
        if isinstance(shapes, str):
            found.append(Problem(f"model.{role}.weights = {spec.weights!r}: {shapes}"))
            continue
        module = (built or {}).get(role)
        if module is None:
            continue
        expected = {key: tuple(value.shape) for key, value in module.state_dict().items()}
        stored_role, stored = shapes
        missing = sorted(set(expected) - set(stored))
        extra = sorted(set(stored) - set(expected))
        wrong = sorted(key for key in set(expected) & set(stored) if expected[key] != stored[key])
        if missing or extra or wrong:
            parts = []
            if wrong:
                key = wrong[0]
                parts.append(f"{len(wrong)} tensors of other shapes (e.g. {key}: file {list(stored[key])}, "
                             f"recipe {list(expected[key])})")
            if missing:
                parts.append(f"{len(missing)} tensors missing (e.g. {missing[0]})")
            if extra:
                parts.append(f"{len(extra)} unexpected (e.g. {extra[0]})")
            found.append(Problem(f"model.{role}.weights = {spec.weights!r}: its {stored_role} does not fit [model.{role}]: "
                                 f"{'; '.join(parts)}; make the options match the file's network"))
    return found


def _needed_kind(field: str, recipe: Recipe) -> str | None:
    """The component kind a file option must hold: oracles an ``oracle``, the lse metric's checkpoint a
    ``lipsync_discriminator`` (None: not checked)."""
    key = field.rsplit(".", 1)[-1]
    if key == "oracle" or key.endswith("_oracle"):
        return "oracle"
    if key == "checkpoint" and field.startswith("evaluate.metrics["):
        index = int(field[len("evaluate.metrics["):].split("]", 1)[0])
        if recipe.evaluate.metrics[index].name == "lse":
            return "lipsync_discriminator"
    return None


def _kinds(path: Path) -> list[str] | None:
    """Kinds of the components a styletalker checkpoint holds (None: not one)."""
    from styletalker_core.checkpoint import read_metadata

    try:
        return sorted({record.get("kind") for record in read_metadata(path)["components"].values()})
    except Exception:  # noqa: BLE001 - other files (published weights) are not checked here
        return None


def world_problems(recipe: Recipe, registries: Registries, build: bool = False) -> list[Problem]:
    """Every problem of running ``recipe`` here (see the module docstring)."""
    found = device_problems(recipe) + data_problems(recipe) + stage_problems(recipe)
    needs_shapes = build or any(spec.weights for spec in recipe.model.values())
    built, build_issues = build_model(recipe, registries) if needs_shapes else ({}, [])
    if build:
        found += build_issues + build_other_components(recipe, registries)
    found += file_problems(recipe, registries, built)
    return found
