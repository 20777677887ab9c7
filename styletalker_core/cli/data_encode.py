"""``styletalker data encode DATASET (--recipe R | --checkpoint MODEL)``: the W+ latent cache.

The ``data`` command (data_command.py) adds this action; the work is done by
styletalker_core.data.latent_cache.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from styletalker_core.interfaces import ImageEncoder


def add_encode_parser(actions: argparse._SubParsersAction) -> None:
    """Add the ``encode`` action to the ``data`` command's sub-parsers."""
    encode = actions.add_parser(
        "encode",
        help="encode every frame of a dataset to W+ once (latent cache; resumable)",
        description="Encode every frame of a clip dataset with a trained image encoder and store the W+ codes "
        "per clip beside the clips (DATASET/latents/CACHE/<clip>.safetensors, float16). Rerunning skips clips "
        "already encoded. The dataset plugin serves cached latents when its latent_cache option names CACHE.",
    )
    encode.add_argument("dataset", metavar="DATASET", help="clip dataset folder (with manifest.json)")
    source = encode.add_mutually_exclusive_group(required=True)
    source.add_argument("--recipe", metavar="RECIPE",
                        help="use the image encoder of this recipe's trained model (its run folder's model.safetensors), "
                        "or the recipe's [model.image_encoder] weights")
    source.add_argument("--checkpoint", metavar="MODEL", help="use the image_encoder of this styletalker checkpoint")
    encode.add_argument("--cache", metavar="NAME", help="cache name (default: the recipe's name or the checkpoint's file name)")
    encode.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                        help="override a recipe field (with --recipe)")
    encode.add_argument("--batch-size", type=int, default=64, help="frames per forward pass")
    encode.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    encode.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    encode.set_defaults(func=run_encode)


def _encoder_from_recipe(name: str, overrides: list[str]) -> tuple[Any, str, str]:
    """(encoder, source description, default cache name) for ``--recipe``."""
    from styletalker_core.checkpoint import load_checkpoint, load_component_weights
    from styletalker_core.errors import StyleTalkerError
    from styletalker_core.plugin_host import get_registries
    from styletalker_core.recipe import load_recipe
    from styletalker_core.registry import build_component
    from styletalker_core.train.pipeline import MODEL_FILE

    registries = get_registries()
    recipe = load_recipe(name, overrides, registries)
    model = Path(recipe.run_dir()) / MODEL_FILE
    if model.is_file():
        return load_checkpoint(model, registries, roles=["image_encoder"])["image_encoder"], str(model), recipe.name
    spec = recipe.model.get("image_encoder")
    if spec is None or not spec.weights:
        raise StyleTalkerError(
            f"recipe {recipe.name}: no trained model at {model} and no [model.image_encoder] weights; "
            f"train it first (`styletalker train {name}`) or pass --checkpoint"
        )
    encoder = build_component(registries, spec.kind or "image_encoder", spec)
    load_component_weights(encoder, spec.weights)
    return encoder, spec.weights, recipe.name


def check_dataset(root: str) -> None:
    """Refuse a DATASET that is not a folder or whose manifest.json cannot be read, naming it."""
    import json

    from styletalker_core.data.shards import ShardReader
    from styletalker_core.errors import StyleTalkerError

    folder = Path(root)
    if not folder.is_dir():
        what = ("is a file; give the dataset folder (the one with manifest.json)" if folder.exists() else
                "no such folder; create the dataset with `styletalker data synth` or `styletalker preprocess`")
        raise StyleTalkerError(f"dataset {folder}: {what}")
    manifest = folder / "manifest.json"
    try:
        reader = ShardReader(folder)
        problem = next((f"clip {clip_id!r} has no frame count" for clip_id, record in reader.records.items()
                        if not isinstance(record, dict) or not isinstance(record.get("num_frames"), int)), "")
    except StyleTalkerError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        problem = f"not valid JSON ({type(error).__name__}: {error})"
    except (KeyError, TypeError, AttributeError):
        problem = 'not a clip list (expected {"format": "styletalker-clips", "clips": [{"clip_id": ..., ...}, ...]})'
    except OSError as error:
        problem = f"cannot be read ({error.strerror or error})"
    if problem:
        raise StyleTalkerError(f"{manifest}: damaged dataset manifest: {problem}; "
                               "make the dataset again (`styletalker data synth` or `styletalker preprocess`)")


def run_encode(args: argparse.Namespace) -> int:
    from styletalker_core.checkpoint import load_checkpoint
    from styletalker_core.data.latent_cache import encode_dataset
    from styletalker_core.devices import parse_device
    from styletalker_core.errors import StyleTalkerError
    from styletalker_core.plugin_host import get_registries

    if args.batch_size < 1:
        raise StyleTalkerError(f"--batch-size {args.batch_size}: give at least 1")
    device = parse_device(args.device)
    check_dataset(args.dataset)
    if args.checkpoint:
        # the image_encoder role is built from the image_encoder kind, whose registry holds ImageEncoders only
        encoder = cast("ImageEncoder", load_checkpoint(args.checkpoint, get_registries(), roles=["image_encoder"])["image_encoder"])
        source, default_cache = str(args.checkpoint), Path(args.checkpoint).name.removesuffix(".safetensors")
    else:
        encoder, source, default_cache = _encoder_from_recipe(args.recipe, args.overrides)
    cache = args.cache or default_cache
    if not cache or "/" in cache or cache.startswith("."):
        raise StyleTalkerError(f"--cache {cache!r}: give a plain folder name")
    summary = encode_dataset(args.dataset, encoder, cache, source=source, batch_size=args.batch_size,
                             device=device, progress=not args.no_progress)
    print(f"{summary.cache_dir}: {len(summary.encoded)} clips encoded ({summary.frames} frames), "
          f"{len(summary.skipped)} already cached")
    return 0
