"""Where the shipped default model and the demo's assets live, and what to do when one is missing.

Paths are relative to the folder of the shipped files (:data:`styletalker_core.paths.SHIPPED_ROOT`:
the project folder in a checkout, the package data of an installed wheel), so the commands work
from any working directory.
"""

from __future__ import annotations

from pathlib import Path

from styletalker_core.errors import StyleTalkerError
from styletalker_core.paths import SHIPPED_ROOT

DEFAULT_MODEL = Path("checkpoints/synthetic_64_model.safetensors")
MODEL_RECIPE = Path("recipes/synthetic_64.toml")
ASSETS = {
    "reference": Path("assets/reference.png"),
    "speech": Path("assets/speech.wav"),
    "motion": Path("assets/motion.mp4"),
}
MAKE_ASSETS = "python tools/make_demo_assets.py"


def project_root() -> Path:
    """The folder of the shipped files: the project folder in a checkout, the package data of a wheel."""
    return SHIPPED_ROOT


def default_model() -> Path:
    return project_root() / DEFAULT_MODEL


def recipe_commands(recipe: Path) -> list[str]:
    """The commands in a recipe's header comment: its indented comment lines (``#   command``)
    before the first line that is not a comment."""
    commands = []
    for line in recipe.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        text = line[1:]
        if text.startswith("  ") and text.strip():
            commands.append(text.strip())
    return commands


def make_model_command() -> str:
    """How to make the shipped model: the commands of its recipe's header, joined with ``&&``,
    and, when they do not put the model in place themselves, the copy from the run folder."""
    recipe = project_root() / MODEL_RECIPE
    commands = recipe_commands(recipe) if recipe.is_file() else []
    commands = commands or [f"styletalker train {MODEL_RECIPE}"]
    if not any(str(DEFAULT_MODEL) in command.split("#")[0] and not command.startswith("styletalker data")
               for command in commands):
        commands.append(f"cp runs/{MODEL_RECIPE.stem}/model.safetensors {DEFAULT_MODEL}")
    return " && ".join(commands)


def require_default_model() -> Path:
    """The shipped model's path; a StyleTalkerError saying how to make it when it is missing."""
    path = default_model()
    if not path.is_file():
        raise StyleTalkerError(f"the shipped model {path} is missing; make it with `{make_model_command()}` "
                               "from the project folder, or pass --checkpoint with another model")
    return path


def require_assets() -> dict[str, Path]:
    """The demo's reference, speech and motion files; a StyleTalkerError naming any that is missing."""
    paths = {role: project_root() / relative for role, relative in ASSETS.items()}
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        raise StyleTalkerError(f"demo assets missing: {', '.join(missing)}; regenerate them with `{MAKE_ASSETS}` "
                               "from the project folder")
    return paths
