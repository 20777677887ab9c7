"""Contract of the ``audio_encoder`` kind, run for every registered audio encoder (built from
its entry's example options)."""

from __future__ import annotations

import pytest
import torch

from styletalker_core.interfaces import AudioEncoder
from styletalker_core.plugin_host import get_registries
from styletalker_core.registry import ComponentSpec, build_component

ENCODERS = list(get_registries()["audio_encoder"])
SPF = 640  # samples per video frame at 16 kHz and 25 fps


def build(name: str) -> AudioEncoder:
    entry = get_registries()["audio_encoder"].get(name)
    torch.manual_seed(0)
    return build_component(get_registries(), "audio_encoder", ComponentSpec(name, dict(entry.example_options)))


def speechlike(batch: int, samples: int, seed: int = 1) -> torch.Tensor:
    """Noise shaped by a slow envelope, a stand-in for speech."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(batch, samples, generator=generator)
    envelope = torch.sin(torch.linspace(0, 20, samples)).abs()[None]
    return 0.3 * noise * envelope


def test_builtin_audio_encoders_are_registered():
    assert {"mel", "wav2vec2"} <= {entry.name for entry in ENCODERS}


@pytest.mark.parametrize("entry", ENCODERS, ids=[entry.name for entry in ENCODERS])
def test_audio_encoder_contract(entry, tmp_path):
    encoder = build(entry.name).eval()
    assert isinstance(encoder, AudioEncoder)
    assert (encoder.sample_rate, encoder.fps, encoder.samples_per_frame) == (16000, 25, SPF)
    assert encoder.context_frames is None or encoder.context_frames >= 0
    wave = speechlike(2, 30 * SPF)
    with torch.no_grad():
        # shapes, for short and odd frame counts
        for frames in (1, 7, 30):
            out = encoder.features(wave, frames)
            assert out.shape == (2, frames, encoder.feature_dim) and torch.isfinite(out).all()
        # fitting convention: longer audio is trimmed, shorter audio zero-padded at the end
        whole = encoder.features(wave[:, : 20 * SPF], 20)
        assert torch.allclose(encoder.features(wave, 20), whole, atol=1e-5)
        short = wave[:, : 13 * SPF + 100]
        padded = torch.nn.functional.pad(short, (0, 20 * SPF - short.shape[1]))
        assert torch.allclose(encoder.features(short, 20), encoder.features(padded, 20), atol=1e-5)
        # batch items are independent
        assert torch.allclose(encoder.features(wave[1:], 20)[0], whole[1], atol=1e-5)
        # the forward call is features
        assert torch.equal(encoder(wave, 20), encoder.features(wave, 20))
        # chunked processing: exact when the receptive field is bounded, else one chunk is exact
        if encoder.context_frames is not None:
            chunked = encoder.features_chunked(wave, 30, chunk_frames=8)
            assert torch.allclose(chunked, encoder.features(wave, 30), atol=1e-4)
        assert torch.allclose(encoder.features_chunked(wave, 30, chunk_frames=30), encoder.features(wave, 30), atol=1e-5)
        with_context = encoder.features_with_context(wave[:, : 14 * SPF], 10, 2)
        assert torch.allclose(with_context, encoder.features(wave[:, : 14 * SPF], 14)[:, 2:12])

    # gradients reach every trainable parameter
    encoder.train()
    trainable = [p for p in encoder.parameters() if p.requires_grad]
    assert trainable, "an audio encoder needs something to train (a head, a projection or layer weights)"
    encoder.zero_grad()
    encoder.features(wave[:, : 10 * SPF], 10).square().mean().backward()
    for name, parameter in encoder.named_parameters():
        if parameter.requires_grad:
            assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name

    # state dict round trip into a fresh instance reproduces the outputs
    encoder.eval()
    torch.save(encoder.state_dict(), tmp_path / "state.pt")
    twin = build(entry.name)
    with torch.no_grad():
        for parameter in twin.parameters():
            parameter.add_(1.0)  # make sure the loaded weights, not the seed, give the match
    twin.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    twin.eval()
    with torch.no_grad():
        assert torch.allclose(twin.features(wave, 12), encoder.features(wave, 12), atol=1e-6)
