"""Contract of the ``audio_encoder`` kind: wave [b, s] at 16 kHz -> features [b, t, c] at 25 fps,
the fitting convention (trim longer audio, zero-pad shorter), chunked processing, gradients to
every trainable parameter, state-dict round trip."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from styletalker_core.interfaces import AudioEncoder
from styletalker_core.testing.factory import ComponentFactory, listed, require

SPF = 640  # samples per video frame at 16 kHz and 25 fps


def speechlike(batch: int, samples: int, seed: int = 1) -> torch.Tensor:
    """[b, s]: noise shaped by a slow envelope, a stand-in for speech."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(batch, samples, generator=generator)
    envelope = torch.sin(torch.linspace(0, 20, samples)).abs()[None]
    return 0.3 * noise * envelope


def _close(factory: ComponentFactory, actual: torch.Tensor, expected: torch.Tensor, atol: float, what: str) -> None:
    require(actual.shape == expected.shape and torch.allclose(actual, expected, atol=atol), factory,
            f"{what} (largest difference {float((actual - expected).abs().max()) if actual.shape == expected.shape else 'shape'})")


def check_audio_encoder_rates_and_shapes(factory: ComponentFactory) -> None:
    """16 kHz, 25 fps, 640 samples per frame; [b, t, c] finite features for short and odd frame counts."""
    encoder = factory().eval()
    require(isinstance(encoder, AudioEncoder), factory, f"built a {type(encoder).__qualname__}, not an AudioEncoder")
    rates = (encoder.sample_rate, encoder.fps, encoder.samples_per_frame)
    require(rates == (16000, 25, SPF), factory, f"(sample_rate, fps, samples_per_frame) = {rates}, expected (16000, 25, 640)")
    require(encoder.context_frames is None or encoder.context_frames >= 0, factory, "context_frames must be None or >= 0")
    wave = speechlike(2, 30 * SPF)
    with torch.no_grad():
        for frames in (1, 7, 30):
            out = encoder.features(wave, frames)
            require(out.shape == (2, frames, encoder.feature_dim), factory,
                    f"features(wave, {frames}) gave {tuple(out.shape)}, expected (2, {frames}, {encoder.feature_dim})")
            require(torch.isfinite(out).all(), factory, f"features(wave, {frames}) is not finite")
        require(torch.equal(encoder(wave, 20), encoder.features(wave, 20)), factory, "forward differs from features")


def check_audio_encoder_fitting_convention(factory: ComponentFactory) -> None:
    """Longer audio is trimmed, shorter audio zero-padded at the end; batch items are independent."""
    encoder = factory().eval()
    wave = speechlike(2, 30 * SPF)
    with torch.no_grad():
        whole = encoder.features(wave[:, : 20 * SPF], 20)
        _close(factory, encoder.features(wave, 20), whole, 1e-5, "longer audio is not trimmed to the frames asked for")
        short = wave[:, : 13 * SPF + 100]
        padded = F.pad(short, (0, 20 * SPF - short.shape[1]))
        _close(factory, encoder.features(short, 20), encoder.features(padded, 20), 1e-5,
               "shorter audio is not zero-padded at the end")
        _close(factory, encoder.features(wave[1:], 20)[0], whole[1], 1e-5, "a batch item depends on the others")


def check_audio_encoder_chunked_processing(factory: ComponentFactory) -> None:
    """features_chunked equals features when the receptive field is bounded (always for one chunk);
    features_with_context drops the context frames."""
    encoder = factory().eval()
    wave = speechlike(2, 30 * SPF)
    with torch.no_grad():
        if encoder.context_frames is not None:
            _close(factory, encoder.features_chunked(wave, 30, chunk_frames=8), encoder.features(wave, 30), 1e-4,
                   f"chunks of 8 frames with context_frames={encoder.context_frames} differ from one pass")
        _close(factory, encoder.features_chunked(wave, 30, chunk_frames=30), encoder.features(wave, 30), 1e-5,
               "one chunk differs from one pass")
        with_context = encoder.features_with_context(wave[:, : 14 * SPF], 10, 2)
        _close(factory, with_context, encoder.features(wave[:, : 14 * SPF], 14)[:, 2:12], 1e-8,
               "features_with_context(wave, 10, 2) is not frames 2..11 of the 14 frames")


def check_audio_encoder_gradients_reach_every_trainable_parameter(factory: ComponentFactory) -> None:
    encoder = factory().train()
    trainable = [p for p in encoder.parameters() if p.requires_grad]
    require(trainable, factory, "an audio encoder needs something to train (a head, a projection or layer weights)")
    encoder.zero_grad()
    encoder.features(speechlike(2, 10 * SPF), 10).square().mean().backward()
    missing = [name for name, p in encoder.named_parameters()
               if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
    require(not missing, factory, f"no finite gradient reaches {listed(missing)}")


def check_audio_encoder_state_dict_round_trip(factory: ComponentFactory) -> None:
    """A fresh instance loading the state dict (its own weights moved first) gives the same features."""
    encoder = factory().eval()
    twin = factory()
    with torch.no_grad():
        for parameter in twin.parameters():
            parameter.add_(1.0)  # make sure the loaded weights, not the seed, give the match
    with tempfile.TemporaryDirectory() as folder:
        torch.save(encoder.state_dict(), Path(folder) / "state.pt")
        twin.load_state_dict(torch.load(Path(folder) / "state.pt", weights_only=True))
    twin.eval()
    wave = speechlike(2, 30 * SPF)
    with torch.no_grad():
        _close(factory, twin.features(wave, 12), encoder.features(wave, 12), 1e-6, "the reloaded state gives other features")
