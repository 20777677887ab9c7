"""Reading recipe files: TOML, ``extends`` inheritance, ``--set`` overrides, recipe discovery.

Relative paths in a recipe file (the values of ``root``, ``weights``, ``oracle``, ``checkpoint``,
``pretrained``, ``judge``, ``lpips_weights`` and of options ending in ``_oracle`` or ``_weights``)
are resolved one way, when the file is read: against the folder of the recipe file that names
them, then against the folder of the shipped files (the project folder in a checkout, with its
``checkpoints/``, ``data/``, ...; an installed wheel's package data: :mod:`styletalker_core.paths`); a path found
there becomes absolute, so every command and component opens the same file whatever the current
directory. A path found in neither place (a data folder or weights not made yet) stays relative
and means the current directory, where the commands that make it write it. Paths given with
``--set`` are relative to the current directory, as on any command line. ``output_dir`` is an
output: relative to the current directory.

``[data] root``, when given, is the data folder of every data table (a table's own ``root`` is
replaced): ``--set data.root=FOLDER`` points a whole recipe at your data with one override.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from styletalker_core.errors import RecipeError
from styletalker_core.paths import SHIPPED_ROOT

PROJECT_RECIPES = SHIPPED_ROOT / "recipes"


def recipe_dirs() -> list[Path]:
    """Folders searched for recipes given by name: ./recipes, then the shipped recipes/."""
    folders = [Path.cwd() / "recipes", PROJECT_RECIPES]
    unique: list[Path] = []
    for folder in folders:
        if folder.is_dir() and folder.resolve() not in [u.resolve() for u in unique]:
            unique.append(folder)
    return unique


def list_recipes() -> list[Path]:
    """Every ``*.toml`` recipe in :func:`recipe_dirs`, by name."""
    found: dict[str, Path] = {}
    for folder in recipe_dirs():
        for path in sorted(folder.glob("*.toml")):
            found.setdefault(path.stem, path)
    return [found[name] for name in sorted(found)]


def is_file(path: Path) -> bool:
    """``path.is_file()``, False also for names the file system refuses (too long, NUL bytes)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def find_recipe(reference: str | Path) -> Path:
    """A recipe path from a path or a bare name (``synthetic_64``)."""
    path = Path(reference)
    if is_file(path):
        return path
    for folder in recipe_dirs():
        candidate = folder / (path.name if path.suffix == ".toml" else f"{path.name}.toml")
        if path.name and is_file(candidate):
            return candidate
    names = ", ".join(p.stem for p in list_recipes()) or "none found"
    raise RecipeError(str(reference), [f"no such recipe file; known recipes: {names}"])


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise RecipeError(str(path), [f"not valid TOML: {error}"]) from None
    except UnicodeDecodeError as error:
        raise RecipeError(str(path), [f"not valid TOML: not UTF-8 text (byte {error.start})"]) from None
    except RecursionError:
        raise RecipeError(str(path), ["not valid TOML: arrays or tables nested too deeply"]) from None
    except OSError as error:
        raise RecipeError(str(path), [f"cannot read: {error.strerror}"]) from None


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``: tables merge key by key, everything else (lists too) is replaced."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


PATH_KEYS = ("root", "weights", "oracle", "checkpoint", "pretrained", "judge", "lpips_weights")


def is_path_key(key: object) -> bool:
    """Whether a recipe option of this name holds a path to an input (file or folder)."""
    return isinstance(key, str) and (key in PATH_KEYS or key.endswith("_oracle") or key.endswith("_weights"))


def resolve_recipe_path(value: str, folder: Path | None = None) -> str:
    """``value`` as the recipe loader resolves it: absolute when it exists relative to ``folder`` (the
    recipe file's) or to the shipped files' folder, else unchanged (relative to the current directory)."""
    import os

    if not value or "\0" in value:
        return value
    expanded = os.path.expanduser(value)
    if Path(expanded).is_absolute():
        return expanded
    for base in ([folder] if folder is not None else []) + [SHIPPED_ROOT]:
        try:
            candidate = base / expanded
            if candidate.exists():
                return str(candidate.resolve())
        except (OSError, ValueError):
            continue
    return value


def resolve_paths(node: Any, folder: Path | None) -> Any:
    """A copy of a raw recipe (or part) with its path options resolved (:func:`resolve_recipe_path`)."""
    if isinstance(node, dict):
        return {key: (resolve_recipe_path(value, folder) if is_path_key(key) and isinstance(value, str)
                      else resolve_paths(value, folder)) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve_paths(item, folder) for item in node]
    return node


def inherit_data_root(raw: dict[str, Any]) -> dict[str, Any]:
    """Move ``[data] root`` into every data table (in place): when given, it is the folder of all of them."""
    data = raw.get("data")
    if isinstance(data, dict) and "root" in data:
        root = data.pop("root")
        for table in data.values():
            if isinstance(table, dict) and "name" in table:
                table["root"] = root
    return raw


def load_raw(path: Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The recipe at ``path`` with its ``extends`` chain merged (parents first), relative paths
    resolved against the folder of the file that names them (:func:`resolve_paths`)."""
    path = path.resolve()
    if path in _chain:
        cycle = " -> ".join(p.name for p in (*_chain, path))
        raise RecipeError(str(path), [f"extends: cycle {cycle}"])
    raw = read_toml(path)
    raw = resolve_paths(raw, path.parent)
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise RecipeError(str(path), [f"extends: expected a path string, got {parent!r}"])
    parent_path = (path.parent / parent) if not Path(parent).is_absolute() else Path(parent)
    if not is_file(parent_path):
        raise RecipeError(str(path), [f"extends: {parent} not found next to {path.name}"])
    return deep_merge(load_raw(parent_path, (*_chain, path)), raw)


def split_assignment(assignment: str) -> tuple[list[str], str]:
    """``"a.b.c=text"`` -> (["a", "b", "c"], "text")."""
    if "=" not in assignment:
        raise RecipeError("--set", [f"{assignment!r}: expected path.to.field=value"])
    key, text = assignment.split("=", 1)
    parts = [part for part in key.strip().split(".")]
    if not all(parts):
        raise RecipeError("--set", [f"{assignment!r}: empty segment in the field path"])
    return parts, text.strip()
