"""The styletalker checkpoint: one safetensors file holding one or more components.

Tensors are stored under ``<role>.<state_dict key>``. The safetensors header's metadata
holds one JSON document under the key ``styletalker``::

    {"format_version": 1,
     "components": {role: {"kind": ..., "name": ..., "options": {...}}},
     "step": int, "recipe": {...resolved recipe...} or null, "extra": {...}}

Loading rebuilds every component from ``components`` through the registries (never by
unpickling), then loads its weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from styletalker_core.checkpoint.files import require_safetensors
from styletalker_core.errors import CheckpointError, RegistryError
from styletalker_core.io.atomic import atomic_path
from styletalker_core.registry.components import ComponentSpec, build_component
from styletalker_core.registry.registry import Registries

FORMAT_VERSION = 1
METADATA_KEY = "styletalker"


@attrs.define
class Checkpoint:
    """Components rebuilt from a checkpoint file, with its metadata."""

    components: dict[str, nn.Module]
    step: int
    recipe: dict[str, Any] | None
    extra: dict[str, Any]
    path: Path

    def __getitem__(self, role: str) -> nn.Module:
        try:
            return self.components[role]
        except KeyError:
            raise CheckpointError(
                f"{self.path}: has no component {role!r}; it holds {', '.join(self.components) or 'none'}"
            ) from None


def component_record(role: str, module: nn.Module) -> dict[str, Any]:
    spec = getattr(module, "component_spec", None)
    if not isinstance(spec, ComponentSpec) or spec.kind is None:
        raise CheckpointError(
            f"component {role!r} ({type(module).__qualname__}) was not built through the registries "
            "(styletalker_core.registry.build_component), so the checkpoint cannot record how to rebuild it"
        )
    options = {k: (v.to_table() if isinstance(v, ComponentSpec) else v) for k, v in spec.options.items()}
    return {"kind": spec.kind, "name": spec.name, "options": options}


def fits_dtype(tensor: torch.Tensor, dtype: torch.dtype) -> bool:
    """Whether every value of a floating-point ``tensor`` is within the finite range of ``dtype``."""
    return tensor.numel() == 0 or float(tensor.abs().max()) <= torch.finfo(dtype).max


def save_checkpoint(
    path: str | Path,
    components: dict[str, nn.Module],
    *,
    step: int = 0,
    recipe: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``components`` (role -> module built by build_component) atomically to ``path``.

    ``dtype`` (for example torch.float16) converts floating-point tensors for a smaller file;
    a tensor with values beyond that dtype's range (BatchNorm running variances can exceed
    float16's 65504) keeps its own dtype. Loading casts them back to each module's own dtype.
    """
    tensors: dict[str, torch.Tensor] = {}
    records = {}
    for role, module in components.items():
        records[role] = component_record(role, module)
        for key, tensor in module.state_dict().items():
            value = tensor.detach().cpu()
            if dtype is not None and value.is_floating_point() and fits_dtype(value, dtype):
                value = value.to(dtype)
            tensors[f"{role}.{key}"] = value.contiguous().clone()
    document = {
        "format_version": FORMAT_VERSION,
        "components": records,
        "step": int(step),
        "recipe": recipe,
        "extra": extra or {},
    }
    try:
        metadata = {METADATA_KEY: json.dumps(document)}
    except TypeError as error:
        raise CheckpointError(f"{path}: metadata is not JSON-serialisable: {error}") from None
    path = Path(path)
    with atomic_path(path) as temporary:
        save_file(tensors, str(temporary), metadata=metadata)
    return path


DAMAGED_HINT = "the file is damaged or incomplete (an interrupted download or copy?); get it again"


def damaged(path: Path, error: BaseException) -> CheckpointError:
    """A CheckpointError for a safetensors file the library cannot read."""
    detail = " ".join(str(error).split()) or type(error).__name__
    return CheckpointError(f"{path}: not a readable safetensors checkpoint ({detail}); {DAMAGED_HINT}")


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON metadata document of a checkpoint, without reading its tensors."""
    path = require_safetensors(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read ({error.strerror or error})") from None
    except Exception as error:  # noqa: BLE001 - safetensors raises its own SafetensorError on a bad header
        raise damaged(path, error) from None
    if METADATA_KEY not in metadata:
        raise CheckpointError(
            f"{path}: a safetensors file without styletalker metadata; if it holds raw weights, "
            "import it with `styletalker convert`"
        )
    try:
        document = json.loads(metadata[METADATA_KEY])
    except (json.JSONDecodeError, RecursionError) as error:
        raise damaged(path, error) from None
    problem = _document_problem(document)
    if problem:
        raise CheckpointError(f"{path}: styletalker metadata {problem}; {DAMAGED_HINT}")
    if document.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: written by a newer styletalker (format {document['format_version']}); upgrade styletalker"
        )
    return document


def _document_problem(document: Any) -> str:
    """What is wrong with the shape of a metadata document ('' when nothing)."""
    if not isinstance(document, dict):
        return "is not a JSON object"
    if not isinstance(document.get("format_version", 0), int):
        return "has a format_version that is not a number"
    components = document.get("components")
    if not isinstance(components, dict):
        return "has no components table"
    for role, record in components.items():
        if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in ("kind", "name")) \
                or not isinstance(record.get("options"), dict):
            return f"has a malformed record for component {role!r}"
    if not isinstance(document.get("step", 0), int) or not isinstance(document.get("extra", {}), dict):
        return "has a malformed step or extra field"
    recipe = document.get("recipe")
    if recipe is not None and not isinstance(recipe, dict):
        return "has a recipe that is not a table"
    return ""


def read_tensors(path: str | Path, prefix: str = "") -> dict[str, torch.Tensor]:
    """Tensors whose key starts with ``prefix`` (the prefix removed), read without unpickling."""
    path = require_safetensors(path)
    tensors = {}
    try:
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - a safetensors handle is not iterable
                if key.startswith(prefix):
                    tensors[key[len(prefix):]] = handle.get_tensor(key)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read ({error.strerror or error})") from None
    except Exception as error:  # noqa: BLE001 - SafetensorError and friends on a damaged file
        raise damaged(path, error) from None
    return tensors


def load_state_strict(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``module``; on a mismatch, name the missing, unexpected and mis-shaped keys."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mis_shaped = [
        f"{key} (checkpoint {tuple(state[key].shape)}, model {tuple(own[key].shape)})"
        for key in sorted(set(own) & set(state))
        if state[key].shape != own[key].shape
    ]
    problems = []
    if missing:
        problems.append("missing keys: " + ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else ""))
    if unexpected:
        problems.append("unexpected keys: " + ", ".join(unexpected[:20]) + (" ..." if len(unexpected) > 20 else ""))
    if mis_shaped:
        problems.append("shape mismatch: " + ", ".join(mis_shaped[:20]))
    if problems:
        raise CheckpointError(f"{source}: weights do not fit {type(module).__qualname__}; " + "; ".join(problems))
    module.load_state_dict(state, strict=True)


def load_checkpoint(
    path: str | Path,
    registries: Registries | None = None,
    roles: list[str] | None = None,
    map_location: str | torch.device = "cpu",
) -> Checkpoint:
    """Rebuild the components recorded in ``path`` (all, or only ``roles``) and load their weights.

    Every component, nested ones included, is built from ``registries``. None is the convenience
    of this documented entry point for scripts (``load_checkpoint(path)["generator"]``): the
    installed plugins' registries. Code that was given registries passes them on.
    """
    if registries is None:
        from styletalker_core.plugin_host import get_registries

        registries = get_registries()
    document = read_metadata(path)
    records = document["components"]
    wanted = roles if roles is not None else list(records)
    components = {}
    for role in wanted:
        if role not in records:
            raise CheckpointError(f"{path}: has no component {role!r}; it holds {', '.join(records) or 'none'}")
        record = records[role]
        spec = ComponentSpec(name=record["name"], options=record["options"], kind=record["kind"])
        try:
            module = build_component(registries, record["kind"], spec)
        except RegistryError as error:  # plugin missing, or a version with other options
            raise CheckpointError(
                f"{path} [{role}]: cannot rebuild the component: {error}; install the plugin version that wrote it"
            ) from None
        load_state_strict(module, read_tensors(path, prefix=f"{role}."), f"{path} [{role}]")
        components[role] = module.to(map_location)
    return Checkpoint(components, document.get("step", 0), document.get("recipe"), document.get("extra", {}), Path(path))


def load_component_weights(module: nn.Module, path: str | Path, role: str | None = None) -> None:
    """Load the weights of one component into an already built ``module``.

    ``role`` picks the component in a multi-component file; when omitted, the file must
    hold exactly one component of the module's kind.
    """
    document = read_metadata(path)
    records = document["components"]
    if role is None:
        spec = getattr(module, "component_spec", None)
        kind = spec.kind if isinstance(spec, ComponentSpec) else None
        candidates = [r for r, record in records.items() if kind is None or record["kind"] == kind]
        if len(candidates) != 1:
            raise CheckpointError(
                f"{path}: holds {', '.join(records) or 'no components'}; say which one to load (role)"
            )
        role = candidates[0]
    if role not in records:
        raise CheckpointError(f"{path}: has no component {role!r}; it holds {', '.join(records) or 'none'}")
    load_state_strict(module, read_tensors(path, prefix=f"{role}."), f"{path} [{role}]")
