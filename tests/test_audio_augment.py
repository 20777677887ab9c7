"""Training-time speech degradations: each one does what its name says, measured on the signal."""

from __future__ import annotations

import math

import pytest
import torch

from styletalker_core.data.audio_augment import AudioAugmentation, add_noise, band_limit, pitch_shift, reverberate

RATE = 16000


def tone(frequency: float, seconds: float = 1.0) -> torch.Tensor:
    t = torch.arange(int(seconds * RATE)) / RATE
    return 0.5 * torch.sin(2 * math.pi * frequency * t)


def band_energy(wave: torch.Tensor, low: float, high: float) -> float:
    spectrum = torch.fft.rfft(wave).abs() ** 2
    freqs = torch.fft.rfftfreq(wave.shape[-1], 1 / RATE)
    return float(spectrum[(freqs >= low) & (freqs < high)].sum())


def test_band_limit_removes_everything_above_half_the_channel_rate() -> None:
    wave = tone(1000) + tone(6000)
    narrow = band_limit(wave, 8000)
    assert narrow.shape == wave.shape
    assert band_energy(narrow, 5000, 8000) < 1e-3 * band_energy(wave, 5000, 8000)
    assert band_energy(narrow, 900, 1100) == pytest.approx(band_energy(wave, 900, 1100), rel=0.05)


@pytest.mark.parametrize("rate", [13500, 17000, 19000])
def test_pitch_shift_moves_the_pitch_and_keeps_duration_and_level(rate: int) -> None:
    wave = tone(400, 2.0)
    shifted = pitch_shift(wave, rate)
    assert shifted.shape == wave.shape
    middle = shifted[4000:28000]
    freqs = torch.fft.rfftfreq(middle.shape[-1], 1 / RATE)
    assert float(freqs[torch.fft.rfft(middle).abs().argmax()]) == pytest.approx(400 * rate / RATE, abs=2.0)
    assert float(shifted.pow(2).mean().sqrt()) == pytest.approx(float(wave.pow(2).mean().sqrt()), rel=1e-3)


def test_noise_is_added_at_the_requested_snr() -> None:
    wave = tone(440)
    noisy = add_noise(wave, 20.0, torch.Generator().manual_seed(0))
    snr = 10 * math.log10(float(wave.pow(2).mean() / (noisy - wave).pow(2).mean()))
    assert snr == pytest.approx(20.0, abs=0.3)
    assert torch.equal(add_noise(torch.zeros(100), 20.0, torch.Generator()), torch.zeros(100))


def test_reverberation_keeps_length_and_level_and_smears_in_time() -> None:
    click = torch.zeros(RATE)
    click[1000] = 0.8
    wet = reverberate(click, 0.4, torch.Generator().manual_seed(0))
    assert wet.shape == click.shape
    assert float(wet.abs().max()) == pytest.approx(0.8, rel=1e-4)
    tail = wet[1000 + int(0.05 * RATE): 1000 + int(0.2 * RATE)]
    assert float(tail.abs().max()) > 1e-3  # energy 50-200 ms after the click


def test_chain_is_deterministic_per_generator_and_changes_the_audio() -> None:
    augment = AudioAugmentation(probability=1.0, band_limit=1.0, mu_law=1.0, noise=1.0, gain=1.0, reverb=1.0, pitch=1.0)
    wave = torch.stack([tone(300) + tone(5000), tone(700)])
    first = augment(wave, torch.Generator().manual_seed(3))
    second = augment(wave, torch.Generator().manual_seed(3))
    assert torch.equal(first, second)
    assert first.shape == wave.shape and first.abs().max() <= 1.0
    assert not torch.allclose(first, wave, atol=1e-2)
    assert torch.isfinite(first).all()


def test_probability_zero_is_the_identity() -> None:
    wave = tone(300)[None]
    assert torch.equal(AudioAugmentation(probability=0.0)(wave, torch.Generator()), wave)


def test_recipe_table_is_checked() -> None:
    assert AudioAugmentation.from_table(None) is None and AudioAugmentation.from_table({}) is None
    assert AudioAugmentation.from_table({"noise": 0.5}).noise == 0.5
    with pytest.raises(ValueError, match=r"unknown option.*nosie"):
        AudioAugmentation.from_table({"nosie": 0.5})
    with pytest.raises(ValueError, match="probability"):
        AudioAugmentation(noise=1.5)
    with pytest.raises(ValueError, match="low <= high"):
        AudioAugmentation(snr_db=(30.0, 10.0))
    with pytest.raises(ValueError, match="pitch_rates"):
        AudioAugmentation(pitch_rates=(17001,))
    with pytest.raises(ValueError, match="band_rates"):
        AudioAugmentation(band_rates=(16000,))
