"""Reading published wav2vec2 / HuBERT checkpoints into torchaudio's parameter names.

Two formats: Hugging Face (a folder with ``config.json`` and ``model.safetensors``,
``model.safetensors.index.json`` shards, or ``pytorch_model.bin``) and fairseq (one ``.pt``
file). Keys are mapped by declarative tables of patterns; keys of heads this encoder does
not use (quantizer, CTC head, masked-frame embedding) are dropped by a second table, and any
other key is an error. Torch files are read with ``torch.load(weights_only=True)``; the only
extra globals allowed are inert stand-ins for the configuration objects fairseq stores.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from styletalker_audio_wav2vec2.architectures import STANDARD_CONV, Wav2Vec2Config, config_from_hf, parse_conv_spec
from styletalker_core.errors import CheckpointError

_LAYER_PARTS = r"(attention\.(?:q|k|v|out)_proj|layer_norm|feed_forward\.(?:intermediate|output)_dense|final_layer_norm)"
_POS = "encoder.transformer.pos_conv_embed.conv"
_WEIGHT_G = f"{_POS}.parametrizations.weight.original0"
_WEIGHT_V = f"{_POS}.parametrizations.weight.original1"
PLAIN_POS_WEIGHT = f"{_POS}.weight"  # a pos-conv weight stored without weight norm: split on load

HF_KEYS: tuple[tuple[str, str], ...] = (
    (r"feature_extractor\.conv_layers\.(\d+)\.(conv|layer_norm)\.(weight|bias)", r"feature_extractor.conv_layers.\1.\2.\3"),
    (r"feature_projection\.(layer_norm|projection)\.(weight|bias)", r"encoder.feature_projection.\1.\2"),
    (r"encoder\.pos_conv_embed\.conv\.(?:weight_g|parametrizations\.weight\.original0)", _WEIGHT_G),
    (r"encoder\.pos_conv_embed\.conv\.(?:weight_v|parametrizations\.weight\.original1)", _WEIGHT_V),
    (r"encoder\.pos_conv_embed\.conv\.weight", PLAIN_POS_WEIGHT),
    (r"encoder\.pos_conv_embed\.conv\.bias", f"{_POS}.bias"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.transformer.layer_norm.\1"),
    (r"encoder\.layers\.(\d+)\." + _LAYER_PARTS + r"\.(weight|bias)", r"encoder.transformer.layers.\1.\2.\3"),
)
HF_DROPPED = r"masked_spec_embed|quantizer\..*|project_q\..*|project_hid\..*|lm_head\..*|label_embeddings_concat|final_proj\..*"
HF_PREFIXES = ("wav2vec2.", "hubert.")

FAIRSEQ_KEYS: tuple[tuple[str, str], ...] = (
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)", r"feature_extractor.conv_layers.\1.conv.\2"),
    (r"feature_extractor\.conv_layers\.0\.2\.(weight|bias)", r"feature_extractor.conv_layers.0.layer_norm.\1"),  # group norm
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.1\.(weight|bias)", r"feature_extractor.conv_layers.\1.layer_norm.\2"),
    (r"post_extract_proj\.(weight|bias)", r"encoder.feature_projection.projection.\1"),
    (r"layer_norm\.(weight|bias)", r"encoder.feature_projection.layer_norm.\1"),
    (r"encoder\.pos_conv\.0\.weight_g", _WEIGHT_G),
    (r"encoder\.pos_conv\.0\.weight_v", _WEIGHT_V),
    (r"encoder\.pos_conv\.0\.weight", PLAIN_POS_WEIGHT),
    (r"encoder\.pos_conv\.0\.bias", f"{_POS}.bias"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.transformer.layer_norm.\1"),
    (r"encoder\.layers\.(\d+)\.self_attn\.((?:q|k|v|out)_proj)\.(weight|bias)", r"encoder.transformer.layers.\1.attention.\2.\3"),
    (r"encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", r"encoder.transformer.layers.\1.layer_norm.\2"),
    (r"encoder\.layers\.(\d+)\.fc1\.(weight|bias)", r"encoder.transformer.layers.\1.feed_forward.intermediate_dense.\2"),
    (r"encoder\.layers\.(\d+)\.fc2\.(weight|bias)", r"encoder.transformer.layers.\1.feed_forward.output_dense.\2"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"encoder.transformer.layers.\1.final_layer_norm.\2"),
)
FAIRSEQ_DROPPED = r"mask_emb|quantizer\..*|project_q\..*|final_proj\..*|label_embs_concat|proj\..*"
FAIRSEQ_PREFIXES = ("w2v_encoder.w2v_model.", "w2v_model.", "w2v_encoder.")


def map_keys(
    state: dict[str, torch.Tensor],
    table: tuple[tuple[str, str], ...],
    dropped: str,
    prefixes: tuple[str, ...],
    source: str,
) -> dict[str, torch.Tensor]:
    """Rename every key of ``state`` by the first matching pattern of ``table``.

    Keys matching ``dropped`` are left out; any other key that no pattern matches raises
    CheckpointError listing it. A pos-conv weight stored without weight norm is split into
    the norm (g) and direction (v) that torchaudio's module holds.
    """
    mapped: dict[str, torch.Tensor] = {}
    unknown = []
    for original, tensor in state.items():
        key = original
        for prefix in prefixes:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        if re.fullmatch(dropped, key):
            continue
        for pattern, template in table:
            if re.fullmatch(pattern, key):
                mapped[re.sub(pattern, template, key)] = tensor
                break
        else:
            unknown.append(original)
    if unknown:
        shown = ", ".join(unknown[:6]) + (f" and {len(unknown) - 6} more" if len(unknown) > 6 else "")
        raise CheckpointError(f"{source}: keys that are not part of a wav2vec2/HuBERT encoder: {shown}")
    plain = mapped.pop(PLAIN_POS_WEIGHT, None)
    if plain is not None:
        mapped[_WEIGHT_G] = torch.linalg.vector_norm(plain, dim=(0, 1), keepdim=True)
        mapped[_WEIGHT_V] = plain
    return mapped


# ------------------------------------------------------------------ Hugging Face


def _hf_folder(path: Path) -> Path:
    folder = path if path.is_dir() else path.parent
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"{path}: no config.json beside the weights; give the Hugging Face model folder")
    return folder


def read_hf_config(path: str | Path) -> Wav2Vec2Config:
    """The architecture described by the ``config.json`` of the Hugging Face model at ``path``."""
    folder = _hf_folder(Path(path))
    document = json.loads((folder / "config.json").read_text())
    try:
        return config_from_hf(document)
    except (KeyError, ValueError, TypeError) as error:
        raise CheckpointError(f"{folder / 'config.json'}: not a wav2vec2/HuBERT config ({error})") from None


def _read_torch_state(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise CheckpointError(f"{path}: cannot be read as a weights-only torch file ({type(error).__name__}: {error})") from None


def read_hf_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Weights of the Hugging Face model at ``path`` (folder or weights file), in torchaudio names."""
    from safetensors.torch import load_file

    path = Path(path)
    folder = _hf_folder(path)
    if path.is_file() and path.name != "config.json":
        files = [path]
    elif (folder / "model.safetensors").is_file():
        files = [folder / "model.safetensors"]
    elif (folder / "model.safetensors.index.json").is_file():
        weight_map = json.loads((folder / "model.safetensors.index.json").read_text())["weight_map"]
        files = [folder / name for name in sorted(set(weight_map.values()))]
    elif (folder / "pytorch_model.bin").is_file():
        files = [folder / "pytorch_model.bin"]
    else:
        raise CheckpointError(f"{folder}: no model.safetensors or pytorch_model.bin in the model folder")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(load_file(str(file)) if file.suffix == ".safetensors" else _read_torch_state(file))
    return map_keys(state, HF_KEYS, HF_DROPPED, HF_PREFIXES, str(folder))


# ------------------------------------------------------------------ fairseq


class _Inert:
    """Stand-in for a configuration object in a fairseq checkpoint: stores its state, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        self.state = state


_FAIRSEQ_GLOBALS: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = [
    (_Inert, name)
    for name in (
        "argparse.Namespace",
        "omegaconf.dictconfig.DictConfig",
        "omegaconf.listconfig.ListConfig",
        "omegaconf.base.ContainerMetadata",
        "omegaconf.base.Metadata",
        "omegaconf.nodes.AnyNode",
        "omegaconf.nodes.StringNode",
        "omegaconf.nodes.IntegerNode",
        "omegaconf.nodes.FloatNode",
        "omegaconf.nodes.BooleanNode",
        "omegaconf.nodes.EnumNode",
        "typing.Any",
    )
]


def _find_setting(tree: Any, name: str, depth: int = 0) -> Any:
    """First value stored under ``name`` anywhere in a fairseq config tree (dicts, stand-ins, nodes)."""
    if depth > 12:
        return None
    if isinstance(tree, _Inert):
        state = getattr(tree, "state", None)
        if isinstance(state, dict) and "_val" in state and "_content" not in state:
            return _find_setting(state["_val"], name, depth + 1)
        return _find_setting(state if state is not None else tree.kwargs, name, depth + 1)
    if isinstance(tree, dict):
        if name in tree:
            found = tree[name]
            return found.state.get("_val") if isinstance(found, _Inert) and isinstance(getattr(found, "state", None), dict) else found
        for value in tree.values():
            result = _find_setting(value, name, depth + 1)
            if result is not None:
                return result
    if isinstance(tree, (list, tuple)):
        for value in tree:
            result = _find_setting(value, name, depth + 1)
            if result is not None:
                return result
    return None


def _fairseq_config(state: dict[str, torch.Tensor], settings: Any, source: str) -> Wav2Vec2Config:
    """Architecture from tensor shapes, with heads, strides and layer-norm order from the stored settings."""
    conv_weights = sorted(
        (int(m.group(1)), t) for k, t in state.items() if (m := re.fullmatch(r"feature_extractor\.conv_layers\.(\d+)\.conv\.weight", k))
    )
    if not conv_weights or "encoder.feature_projection.projection.weight" not in state:
        raise CheckpointError(f"{source}: not a wav2vec2/HuBERT checkpoint (no feature extractor or projection weights)")
    kernels = [int(t.shape[-1]) for _, t in conv_weights]
    spec = _find_setting(settings, "conv_feature_layers")
    if isinstance(spec, str):
        conv = parse_conv_spec(spec)
    elif kernels == [k for _, k, _ in STANDARD_CONV]:
        conv = tuple((int(t.shape[0]), kernel, stride) for (_, t), (_, kernel, stride) in zip(conv_weights, STANDARD_CONV, strict=True))
    else:
        raise CheckpointError(f"{source}: non-standard feature extractor and no conv_feature_layers setting; cannot tell its strides")
    embed_dim = int(state["encoder.feature_projection.projection.weight"].shape[0])
    heads = _find_setting(settings, "encoder_attention_heads")
    if heads is None:
        heads = {768: 12, 1024: 16, 1280: 16}.get(embed_dim)
        if heads is None:
            raise CheckpointError(f"{source}: no encoder_attention_heads setting and no standard size; cannot tell the head count")
    layer_norm_mode = "feature_extractor.conv_layers.1.layer_norm.weight" in state
    layer_norm_first = _find_setting(settings, "layer_norm_first")
    num_layers = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"encoder\.transformer\.layers\.(\d+)\.", k)))
    weight_v = state[_WEIGHT_V]
    return Wav2Vec2Config(
        extractor_mode="layer_norm" if layer_norm_mode else "group_norm",
        conv_layers=conv,
        conv_bias="feature_extractor.conv_layers.0.conv.bias" in state,
        embed_dim=embed_dim,
        num_layers=num_layers,
        num_heads=int(heads),
        ff_dim=int(state["encoder.transformer.layers.0.feed_forward.intermediate_dense.weight"].shape[0]),
        pos_conv_kernel=int(weight_v.shape[-1]),
        pos_conv_groups=embed_dim // int(weight_v.shape[1]),
        layer_norm_first=bool(layer_norm_mode if layer_norm_first is None else layer_norm_first),
        projection_layer_norm="encoder.feature_projection.layer_norm.weight" in state,
    )


def read_fairseq(path: str | Path) -> tuple[Wav2Vec2Config, dict[str, torch.Tensor]]:
    """Architecture and weights (torchaudio names) of a fairseq wav2vec2/HuBERT ``.pt`` checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such fairseq checkpoint")
    with torch.serialization.safe_globals(_FAIRSEQ_GLOBALS):
        document = _read_torch_state(path)
    if not isinstance(document, dict):
        raise CheckpointError(f"{path}: not a fairseq checkpoint (expected a dict with a 'model' entry)")
    raw = document.get("model", document)
    settings = {key: document[key] for key in ("cfg", "args") if key in document}
    tensors = {k: v for k, v in raw.items() if isinstance(v, torch.Tensor)}
    state = map_keys(tensors, FAIRSEQ_KEYS, FAIRSEQ_DROPPED, FAIRSEQ_PREFIXES, str(path))
    return _fairseq_config(state, settings, str(path)), state


def read_pretrained(path: str | Path) -> tuple[Wav2Vec2Config, dict[str, torch.Tensor]]:
    """Architecture and weights of a Hugging Face model folder (or file in one) or a fairseq ``.pt`` file."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such wav2vec2 checkpoint; give a Hugging Face model folder or a fairseq .pt file")
    if path.is_dir() or (path.parent / "config.json").is_file():
        return read_hf_config(path), read_hf_state(path)
    return read_fairseq(path)


def read_pretrained_config(path: str | Path) -> Wav2Vec2Config:
    """Only the architecture of the checkpoint at ``path`` (cheap for Hugging Face folders)."""
    path = Path(path)
    if path.is_dir() or (path.parent / "config.json").is_file():
        return read_hf_config(path)
    return read_pretrained(path)[0]
