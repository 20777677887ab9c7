"""wav2vec 2.0 / HuBERT architectures: named presets, configs read from checkpoints, and the
torchaudio model built from a config.

All presets share the convolutional feature extractor of the papers (7 layers, total stride
320 samples, receptive field 400 samples: 50 frames per second at 16 kHz).
"""

from __future__ import annotations

import ast
import operator
from typing import Any, cast

import attrs
from torch import nn

STANDARD_CONV = ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2


@attrs.frozen
class Wav2Vec2Config:
    """Everything that shapes a wav2vec2-family model (dropouts are set at build time)."""

    extractor_mode: str = "group_norm"  # "group_norm" (normalises over time) or "layer_norm" (per frame)
    conv_layers: tuple[tuple[int, int, int], ...] = STANDARD_CONV  # (channels, kernel, stride) per layer
    conv_bias: bool = False
    embed_dim: int = 768
    num_layers: int = 12
    num_heads: int = 12
    ff_dim: int = 3072
    pos_conv_kernel: int = 128
    pos_conv_groups: int = 16
    layer_norm_first: bool = False  # pre-LN transformer (the "large lv60" and HuBERT large family)
    projection_layer_norm: bool = True  # layer norm before the feature projection

    @property
    def stride(self) -> int:
        """Samples between consecutive output frames."""
        total = 1
        for _, _, stride in self.conv_layers:
            total *= stride
        return total

    @property
    def receptive_samples(self) -> int:
        """Samples that one output frame of the feature extractor sees."""
        field, jump = 1, 1
        for _, kernel, stride in self.conv_layers:
            field += (kernel - 1) * jump
            jump *= stride
        return field


_LARGE: dict[str, Any] = {"embed_dim": 1024, "num_layers": 24, "num_heads": 16, "ff_dim": 4096}
PRESETS: dict[str, Wav2Vec2Config] = {
    "base": Wav2Vec2Config(),
    "large": Wav2Vec2Config(**_LARGE),
    "large_lv60": Wav2Vec2Config(extractor_mode="layer_norm", conv_bias=True, layer_norm_first=True, **_LARGE),
    "hubert_base": Wav2Vec2Config(),
    "hubert_large": Wav2Vec2Config(extractor_mode="layer_norm", layer_norm_first=True, **_LARGE),
    "hubert_xlarge": Wav2Vec2Config(
        extractor_mode="layer_norm", layer_norm_first=True, embed_dim=1280, num_layers=48, num_heads=16, ff_dim=5120
    ),
}


def build_backbone(config: Wav2Vec2Config, dropout: float = 0.0) -> Any:  # torchaudio's Wav2Vec2Model (untyped)
    """A randomly initialised torchaudio Wav2Vec2Model for ``config`` (no auxiliary head)."""
    from torchaudio.models import wav2vec2_model

    model = wav2vec2_model(
        extractor_mode=config.extractor_mode,
        extractor_conv_layer_config=[list(layer) for layer in config.conv_layers],
        extractor_conv_bias=config.conv_bias,
        encoder_embed_dim=config.embed_dim,
        encoder_projection_dropout=dropout,
        encoder_pos_conv_kernel=config.pos_conv_kernel,
        encoder_pos_conv_groups=config.pos_conv_groups,
        encoder_num_layers=config.num_layers,
        encoder_num_heads=config.num_heads,
        encoder_attention_dropout=dropout,
        encoder_ff_interm_features=config.ff_dim,
        encoder_ff_interm_dropout=dropout,
        encoder_dropout=dropout,
        encoder_layer_norm_first=config.layer_norm_first,
        encoder_layer_drop=0.0,
        aux_num_out=None,
    )
    if not config.projection_layer_norm:
        model.encoder.feature_projection.layer_norm = nn.Identity()
    return model


def config_from_hf(document: dict[str, Any]) -> Wav2Vec2Config:
    """Config from a Hugging Face ``config.json`` of a wav2vec2 or HuBERT model."""
    model_type = document.get("model_type", "wav2vec2")
    if model_type not in ("wav2vec2", "hubert"):
        raise ValueError(f"model_type {model_type!r} is not wav2vec2 or hubert")
    conv = tuple(zip(document["conv_dim"], document["conv_kernel"], document["conv_stride"], strict=True))
    return Wav2Vec2Config(
        extractor_mode=f"{document.get('feat_extract_norm', 'group')}_norm",
        conv_layers=tuple((int(dim), int(kernel), int(stride)) for dim, kernel, stride in conv),
        conv_bias=bool(document.get("conv_bias", False)),
        embed_dim=int(document["hidden_size"]),
        num_layers=int(document["num_hidden_layers"]),
        num_heads=int(document["num_attention_heads"]),
        ff_dim=int(document["intermediate_size"]),
        pos_conv_kernel=int(document.get("num_conv_pos_embeddings", 128)),
        pos_conv_groups=int(document.get("num_conv_pos_embedding_groups", 16)),
        layer_norm_first=bool(document.get("do_stable_layer_norm", False)),
        projection_layer_norm=bool(document.get("feat_proj_layer_norm", True)),
    )


def config_to_hf(config: Wav2Vec2Config, model_type: str = "wav2vec2") -> dict[str, Any]:
    """The Hugging Face ``config.json`` fields that describe ``config``."""
    return {
        "model_type": model_type,
        "feat_extract_norm": config.extractor_mode.removesuffix("_norm"),
        "conv_dim": [layer[0] for layer in config.conv_layers],
        "conv_kernel": [layer[1] for layer in config.conv_layers],
        "conv_stride": [layer[2] for layer in config.conv_layers],
        "conv_bias": config.conv_bias,
        "hidden_size": config.embed_dim,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "intermediate_size": config.ff_dim,
        "num_conv_pos_embeddings": config.pos_conv_kernel,
        "num_conv_pos_embedding_groups": config.pos_conv_groups,
        "do_stable_layer_norm": config.layer_norm_first,
        "feat_proj_layer_norm": config.projection_layer_norm,
    }


_BINARY = {ast.Add: operator.add, ast.Mult: operator.mul}


def parse_conv_spec(text: str) -> tuple[tuple[int, int, int], ...]:
    """fairseq's ``conv_feature_layers`` string, e.g. ``"[(512, 10, 5)] + [(512, 3, 2)] * 4"``,
    evaluated without eval(): only list/tuple literals of integers joined by + and *."""

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [value(item) for item in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](value(node.left), value(node.right))
        raise ValueError(f"unsupported expression in conv_feature_layers: {ast.dump(node)}")

    layers = value(ast.parse(text, mode="eval").body)
    # fairseq's layers are (dim, kernel, stride)
    return cast("tuple[tuple[int, int, int], ...]", tuple(tuple(int(v) for v in layer) for layer in layers))
