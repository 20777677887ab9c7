"""The mel audio encoder: window placement, frequency content, alignment, chunking."""

from __future__ import annotations

import math

import torch
import torchaudio

from styletalker_audio_mel.encoder import MelAudioEncoder

SR, SPF = 16000, 640


def small() -> MelAudioEncoder:
    torch.manual_seed(0)
    return MelAudioEncoder(feature_dim=16, hidden_channels=16, num_layers=3, norm_groups=4).eval()


def test_defaults_follow_the_field_conventions():
    encoder = MelAudioEncoder()
    mel = encoder.windows.mel
    assert (mel.sample_rate, mel.n_fft, mel.win_length, mel.hop_length, mel.n_mels) == (16000, 800, 800, 200, 80)
    assert (mel.f_min, mel.f_max) == (55.0, 7600.0)
    assert encoder.feature_dim == 256 and encoder.context_frames == 3
    # 16 mel frames at 80 Hz span 0.2 s = 5 video frames
    assert encoder.windows.window_mel_frames * mel.hop_length == 5 * SPF


def test_window_of_a_frame_is_the_mel_spectrogram_centred_on_it():
    encoder = small()
    wave = torch.randn(1, 40 * SPF, generator=torch.Generator().manual_seed(3)) * 0.2
    windows = encoder.mel_windows(wave, 40)
    assert windows.shape == (1, 40, 80, 16)
    t = 20
    # mel frame j of frame t's window is centred at sample t*spf + spf/2 + (j - 7.5) * hop
    for j in (0, 7, 15):
        centre = t * SPF + SPF // 2 + int((j - 7.5) * 200)
        segment = wave[:, centre - 400 : centre + 400]
        window = torch.hann_window(800)
        magnitude = torch.fft.rfft(segment * window).abs()  # [1, 401]
        banks = torchaudio.functional.melscale_fbanks(401, 55.0, 7600.0, 80, SR, norm="slaney", mel_scale="slaney")
        expected = torch.log(torch.clamp(magnitude @ banks, min=1e-5))[0]
        assert torch.allclose(windows[0, t, :, j], expected, atol=1e-4)


def test_a_1khz_tone_peaks_in_the_1khz_mel_bin():
    encoder = small()
    time = torch.arange(2 * SR) / SR
    windows = encoder.mel_windows(torch.sin(2 * math.pi * 1000 * time)[None], 50)
    peak_bin = windows[0, 25].mean(dim=1).argmax().item()
    centres = torchaudio.functional.melscale_fbanks(401, 55.0, 7600.0, 80, SR, norm="slaney", mel_scale="slaney").argmax(dim=0)
    assert abs(centres[peak_bin].item() * SR / 800 - 1000) <= 60  # within one bin's spacing


def test_an_impulse_at_second_s_shows_in_frame_25s():
    encoder = small()
    silence = torch.zeros(1, 4 * SR)
    with torch.no_grad():
        base = encoder.features(silence, 100)
        for seconds in (1.0, 2.02, 3.5, 0.3):
            wave = silence.clone()
            wave[0, int(round(seconds * SR))] = 1.0
            frame = int(25 * seconds + 1e-9)
            windows = encoder.mel_windows(wave, 100)
            energy = windows.exp().sum(dim=2)[0]  # [t, k]
            # the window of frame 25 s holds the impulse inside the frame's own span (its centre 0.04 s)
            own = slice(7 - 2, 9 + 2)
            assert energy[frame, own].max() > 100 * energy[frame - 4].max()
            # and the learned features change only within the encoder's receptive field around it
            change = (encoder.features(wave, 100) - base).norm(dim=-1)[0]
            assert change[frame] > 0
            reach = encoder.context_frames
            outside = torch.ones(100, dtype=torch.bool)
            outside[max(frame - reach, 0) : frame + reach + 1] = False
            assert change[outside].max() == 0


def test_chunked_equals_whole_for_long_audio():
    encoder = small()
    wave = torch.randn(1, 8 * SR, generator=torch.Generator().manual_seed(5)) * 0.3
    with torch.no_grad():
        whole = encoder.features(wave, 200)
        for chunk in (37, 130):
            assert torch.allclose(encoder.features_chunked(wave, 200, chunk_frames=chunk), whole, atol=1e-5)
        # too little overlap is visibly not exact: the receptive field matters
        assert not torch.allclose(encoder.features_chunked(wave, 200, chunk_frames=37, overlap_frames=0), whole, atol=1e-5)
