"""The wav2vec2 audio encoder: checkpoint import (Hugging Face, fairseq), layers, rate
conversion, freezing, chunked processing."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from styletalker_audio_wav2vec2.architectures import config_to_hf, parse_conv_spec
from styletalker_audio_wav2vec2.encoder import Wav2Vec2AudioEncoder
from styletalker_audio_wav2vec2.plugin import TINY_OPTIONS
from styletalker_core.errors import CheckpointError

SR, SPF = 16000, 640
PRE_LN = {"extractor_mode": "layer_norm"}


def tiny(seed: int = 0, **changes: object) -> Wav2Vec2AudioEncoder:
    torch.manual_seed(seed)
    return Wav2Vec2AudioEncoder(**{**TINY_OPTIONS, **changes}).eval()


def speech(seconds: float, seed: int = 2) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    samples = int(seconds * SR)
    return 0.2 * torch.randn(1, samples, generator=generator) * torch.sin(torch.linspace(0, 30, samples)).abs()


# Hand-written inverse tables (torchaudio name -> published name), independent of the plugin's.
TO_HF = (
    (r"encoder\.feature_projection\.", "feature_projection."),
    (r"encoder\.transformer\.pos_conv_embed\.conv\.parametrizations\.weight\.original0", "encoder.pos_conv_embed.conv.weight_g"),
    (r"encoder\.transformer\.pos_conv_embed\.conv\.parametrizations\.weight\.original1", "encoder.pos_conv_embed.conv.weight_v"),
    (r"encoder\.transformer\.", "encoder."),
)
TO_FAIRSEQ = (
    (r"feature_extractor\.conv_layers\.(\d+)\.conv\.", r"feature_extractor.conv_layers.\1.0."),
    (r"feature_extractor\.conv_layers\.(\d+)\.layer_norm\.", r"feature_extractor.conv_layers.\1.2.1."),
    (r"encoder\.feature_projection\.projection\.", "post_extract_proj."),
    (r"encoder\.feature_projection\.layer_norm\.", "layer_norm."),
    (r"encoder\.transformer\.pos_conv_embed\.conv\.parametrizations\.weight\.original0", "encoder.pos_conv.0.weight_g"),
    (r"encoder\.transformer\.pos_conv_embed\.conv\.parametrizations\.weight\.original1", "encoder.pos_conv.0.weight_v"),
    (r"encoder\.transformer\.pos_conv_embed\.conv\.bias", "encoder.pos_conv.0.bias"),
    (r"encoder\.transformer\.layers\.(\d+)\.attention\.", r"encoder.layers.\1.self_attn."),
    (r"encoder\.transformer\.layers\.(\d+)\.layer_norm\.", r"encoder.layers.\1.self_attn_layer_norm."),
    (r"encoder\.transformer\.layers\.(\d+)\.feed_forward\.intermediate_dense\.", r"encoder.layers.\1.fc1."),
    (r"encoder\.transformer\.layers\.(\d+)\.feed_forward\.output_dense\.", r"encoder.layers.\1.fc2."),
    (r"encoder\.transformer\.", "encoder."),
)


def rename(state: dict[str, torch.Tensor], table: tuple[tuple[str, str], ...]) -> dict[str, torch.Tensor]:
    out = {}
    for key, tensor in state.items():
        for pattern, replacement in table:
            if re.match(pattern, key):
                key = re.sub(pattern, replacement, key, count=1)
                break
        out[key] = tensor.clone().contiguous()
    return out


def write_hf(folder: Path, encoder: Wav2Vec2AudioEncoder, binary: bool = False, prefix: str = "", extra: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    state = rename(encoder.backbone.state_dict(), TO_HF)
    if encoder.config.extractor_mode == "group_norm":
        state.pop("feature_extractor.conv_layers.0.layer_norm.weight")  # group norm keeps the same name in HF
        key = "feature_extractor.conv_layers.0.layer_norm.weight"
        state[key] = encoder.backbone.state_dict()[key].clone()
    state = {prefix + key: value for key, value in state.items()} | (extra or {})
    (folder / "config.json").write_text(json.dumps(config_to_hf(encoder.config) | {"architectures": ["Wav2Vec2ForCTC"]}))
    if binary:
        torch.save(state, folder / "pytorch_model.bin")
    else:
        save_file(state, str(folder / "model.safetensors"))
    return folder


def test_tiny_model_has_the_real_frame_layout():
    encoder = tiny()
    assert encoder.config.stride == 320 and encoder.config.receptive_samples == 400
    with torch.no_grad():
        assert encoder.model_frames(speech(1.0)).shape[1] == 49  # 50 Hz
        assert encoder.features(speech(1.0), 25).shape == (1, 25, 24)
    assert encoder.feature_dim == 24 and tiny(feature_dim=0).feature_dim == 32


@pytest.mark.parametrize(("binary", "prefix", "changes"), [(False, "", {}), (True, "wav2vec2.", PRE_LN)])
def test_hf_checkpoint_round_trip_gives_identical_outputs(tmp_path, binary, prefix, changes):
    source = tiny(seed=1, **changes)
    extra = {"lm_head.weight": torch.zeros(5, 32), "masked_spec_embed": torch.zeros(32)}
    folder = write_hf(tmp_path / "hf", source, binary=binary, prefix=prefix, extra=extra)
    imported = tiny(seed=7, architecture="auto", pretrained=str(folder), **changes)
    assert imported.config == source.config
    imported.projection.load_state_dict(source.projection.state_dict())
    wave = speech(2.0)
    with torch.no_grad():
        assert not torch.equal(imported.features(wave, 50), source.features(wave, 50))
        imported.load_pretrained()
        assert torch.equal(imported.features(wave, 50), source.features(wave, 50))


def test_hf_import_rejects_unknown_keys_and_other_architectures(tmp_path):
    source = tiny(seed=1)
    folder = write_hf(tmp_path / "hf", source, extra={"decoder.weight": torch.zeros(3)})
    with pytest.raises(CheckpointError, match=r"decoder.weight"):
        tiny(architecture="auto", pretrained=str(folder)).load_pretrained()
    folder = write_hf(tmp_path / "hf2", source)
    with pytest.raises(CheckpointError, match="architecture"):
        tiny(num_layers=1, pretrained=str(folder)).load_pretrained()


@pytest.mark.parametrize("changes", [{}, PRE_LN])
def test_fairseq_checkpoint_round_trip_gives_identical_outputs(tmp_path, changes):
    source = tiny(seed=3, **changes)
    state = rename(source.backbone.state_dict(), TO_FAIRSEQ)
    if source.config.extractor_mode == "group_norm":  # fairseq keeps the group norm at index 2 of layer 0
        for name in ("weight", "bias"):
            state[f"feature_extractor.conv_layers.0.2.{name}"] = state.pop(f"feature_extractor.conv_layers.0.2.1.{name}")
    state["mask_emb"] = torch.zeros(32)
    state["quantizer.vars"] = torch.zeros(1, 4, 8)
    conv = "[(16, 10, 5)] + [(16, 3, 2)] * 4 + [(16, 2, 2)] * 2"
    args = argparse.Namespace(encoder_attention_heads=2, conv_feature_layers=conv, layer_norm_first=source.config.layer_norm_first)
    torch.save({"args": args, "model": state, "optimizer_history": [{"num_updates": 10}]}, tmp_path / "w2v.pt")
    imported = tiny(seed=9, architecture="auto", pretrained=str(tmp_path / "w2v.pt"), **changes)
    assert imported.config == source.config
    imported.projection.load_state_dict(source.projection.state_dict())
    imported.load_pretrained()
    wave = speech(1.5)
    with torch.no_grad():
        assert torch.equal(imported.features(wave, 37), source.features(wave, 37))


def test_fairseq_loader_refuses_code_in_the_pickle(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    torch.save({"model": {}, "extra": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="weights-only"):
        tiny(architecture="auto", pretrained=str(tmp_path / "evil.pt"))


def test_conv_spec_parser_handles_fairseq_strings_without_eval():
    assert parse_conv_spec("[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] * 2")[-1] == (512, 2, 2)
    assert len(parse_conv_spec("[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] * 2")) == 7
    with pytest.raises(ValueError):
        parse_conv_spec("__import__('os').system('true')")


@pytest.mark.parametrize("changes", [{}, PRE_LN])
def test_hidden_states_match_torchaudio(changes):
    encoder = tiny(seed=4, **changes)
    wave = speech(1.0)
    with torch.no_grad():
        states = encoder.hidden_states(wave)
        layers = encoder.backbone.extract_features(wave)[0]
        output, _ = encoder.backbone(wave)
    assert len(states) == 3
    assert torch.allclose(states[1], layers[0], atol=1e-6)
    assert torch.allclose(states[-1], output, atol=1e-6)  # final layer norm of pre-LN models included


def test_layer_choice_and_weighted_sum():
    wave = speech(1.0)
    with torch.no_grad():
        first = tiny(seed=5, layer=1, feature_dim=0).features(wave, 25)
        states = tiny(seed=5, feature_dim=0).hidden_states(wave)
        mixed_encoder = tiny(seed=5, weighted_layers=True, feature_dim=0)
        mixed = mixed_encoder.features(wave, 25)
        to25 = mixed_encoder.to_video_rate
        assert torch.allclose(first, to25(states[1], 25), atol=1e-6)
        assert torch.allclose(mixed, to25(torch.stack(states).mean(0), 25), atol=1e-5)  # uniform at start
    assert mixed_encoder.layer_weights.requires_grad


def test_an_impulse_at_second_s_shows_in_frame_25s():
    for layer in (0, 2):
        encoder = tiny(seed=6, layer=layer, feature_dim=0, pos_conv_kernel=2, **PRE_LN)
        silence = torch.zeros(1, 4 * SR)
        with torch.no_grad():
            base = encoder.features(silence, 100)
            for seconds in (1.0, 1.5, 2.52):
                wave = silence.clone()
                wave[0, int(round(seconds * SR))] = 1.0
                change = (encoder.features(wave, 100) - base).norm(dim=-1)[0]
                assert change.argmax().item() == int(25 * seconds)


def test_model_frames_map_to_video_frame_centres():
    encoder = tiny()
    ramp = torch.arange(49, dtype=torch.float32)[None, :, None]  # a 50 Hz frame index as a feature
    positions = encoder.to_video_rate(ramp, 25)[0, :, 0]
    # video frame t is centred at (t + 0.5) / 25 s; model frame j at (320 j + 200) / 16000 s
    expected = (2 * torch.arange(25) + 0.375).clamp(max=48)  # the last centre lies past the last model frame
    assert torch.allclose(positions, expected)


def test_freezing_and_fine_tuning():
    wave = speech(0.5)
    frozen = tiny(freeze=True).train()
    assert not frozen.backbone.training and not any(p.requires_grad for p in frozen.backbone.parameters())
    frozen.features(wave, 12).sum().backward()
    assert frozen.projection.weight.grad is not None
    tuned = tiny(freeze=False, dropout=0.1).train()
    assert tuned.backbone.training
    tuned.features(wave, 12).sum().backward()
    assert all(p.grad is not None for p in tuned.backbone.encoder.parameters())


def test_chunked_equals_whole_with_windowed_attention():
    encoder = tiny(seed=8, attention_window_frames=3, **PRE_LN)
    assert encoder.context_frames is not None
    wave = speech(8.0)
    with torch.no_grad():
        whole = encoder.features(wave, 200)
        assert torch.allclose(encoder.features_chunked(wave, 200, chunk_frames=45), whole, atol=1e-5)
    # the published (whole-input) form has an unbounded receptive field
    assert tiny().context_frames is None
