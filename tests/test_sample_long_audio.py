"""Long speech: `sample` reads the recording chunk by chunk and still writes the one-pass video.

The generation side (TalkingHead.stream_latents fed an iterable of audio chunks through a
WaveWindow) is bitwise equal to the whole-wave path for any chunking; the engine writes the
same frames and muxes exactly the decoded speech; the audio held at any time is bounded by
the chunk, not the recording; a bad sample late in the file fails the job naming the file
with nothing left at the output path.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pytest
import soundfile
import torch
from sample_toys import make_inputs, speech_like
from test_talking_head_toys import toy_components, toy_registries

from styletalker_core.cli.main import main as cli_main
from styletalker_core.media import read_audio
from styletalker_core.model import TalkingHead
from styletalker_core.model.wave_window import WaveWindow
from styletalker_core.sample import InputError, SampleJob, Sampler, SampleSettings
from styletalker_core.sample import outputs as outputs_module
from styletalker_core.sample import speech as speech_module
from styletalker_core.sample.faces import to_uint8
from styletalker_core.sample.paste_back import source_index, source_indices

SPF = 640


@pytest.fixture(scope="module")
def head() -> TalkingHead:
    return TalkingHead.from_components(toy_components(toy_registries())).eval()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_inputs(tmp_path_factory.mktemp("inputs"), audio_seconds=3.3)


@pytest.fixture(scope="module")
def sampler(inputs) -> Sampler:
    return Sampler.from_checkpoint(inputs.model, inputs.registries)


def pieces(wave: torch.Tensor, sizes: list[int]):
    """``wave`` cut into consecutive pieces of the given sizes, repeated to the end."""
    at, index = 0, 0
    while at < len(wave):
        size = sizes[index % len(sizes)]
        yield wave[at: at + size].numpy()
        at, index = at + size, index + 1


# -- the model side ---------------------------------------------------------------------------
def test_wave_window_spans_read_zeros_past_the_end_and_forget_dropped_samples():
    wave = torch.arange(1, 101, dtype=torch.float32)
    window = WaveWindow(pieces(wave, [7, 30]))
    assert torch.equal(window.span(0, 10)[0], wave[:10]) and window.received == 37  # pulled only what was needed
    assert torch.equal(window.span(95, 105)[0], torch.cat([wave[95:], torch.zeros(5)]))
    assert window.ended and window.received == 100
    window.drop_before(50)
    assert window.start == 50 and torch.equal(window.span(50, 52)[0], wave[50:52])
    with pytest.raises(ValueError, match="dropped"):
        window.span(49, 52)


@pytest.mark.parametrize("sizes", [[1000], [SPF], [333, 5000, 17], [10**6]])
@pytest.mark.parametrize("options", [
    {"num_samples": 2, "chunk_frames": 7},
    {"still": True, "chunk_frames": 5},
    {"motion": "source", "chunk_frames": 6},
    {"motion": "source", "motion_fit": "trim", "chunk_frames": 4},
])
def test_latents_from_audio_chunks_equal_the_whole_wave_bitwise(head, sizes, options):
    """The chunks of speech fed one by one give the very latents of the whole wave."""
    options = dict(options)
    if options.get("motion") == "source":
        options["motion"] = torch.randn(11, head.motion_vae.z_dim, generator=torch.Generator().manual_seed(2))
    audio = 0.1 * torch.randn(41 * SPF + 77, generator=torch.Generator().manual_seed(0))
    w_id = head.encode_identity(torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1)

    def latents(source):
        return torch.cat(list(head.stream_latents(w_id, source, generator=torch.Generator().manual_seed(3), **options)), 1)

    whole = latents(audio)
    assert whole.shape[1] == (11 if options.get("motion_fit") == "trim" else 42)
    assert torch.equal(latents(pieces(audio, sizes)), whole)


def test_the_window_holds_the_chunk_not_the_recording(head, monkeypatch):
    """With 400 frames of audio in pieces of 500 samples and chunks of 10 frames, the window never
    holds more than a chunk, its context and one piece."""
    held = []
    fill = WaveWindow.fill

    def spy(self, samples):
        fill(self, samples)
        held.append(self.received - self.start)

    monkeypatch.setattr(WaveWindow, "fill", spy)
    audio = 0.1 * torch.randn(400 * SPF, generator=torch.Generator().manual_seed(0))
    w_id = head.encode_identity(torch.zeros(3, 16, 16))
    frames = sum(ws.shape[1] for ws in head.stream_latents(w_id, pieces(audio, [500]), chunk_frames=10))
    assert frames == 400
    reach = max(head.lip_mapper.context_frames, head.prior.lookahead) + head.audio_encoder.context_frames
    bound = (10 + reach + head.lip_mapper.context_frames + head.audio_encoder.context_frames) * SPF + 500
    assert max(held) <= bound < len(audio) / 10


def test_a_motion_source_span_is_the_fitted_motion():
    from styletalker_core.model import fit_motion
    from styletalker_core.model.motion_fit import fit_motion_span

    z = torch.arange(5.0)[:, None]
    for start, stop in [(0, 3), (2, 5), (4, 19), (13, 14)]:
        assert torch.equal(fit_motion_span(z, start, stop), fit_motion(z, 19)[start:stop])
    assert torch.equal(fit_motion_span(z[:1], 3, 6), z[:1].expand(3, 1))
    assert [source_index(5, k) for k in range(23)] == source_indices(5, 23).tolist()


# -- the engine --------------------------------------------------------------------------------
class RecordingVideoSet(outputs_module.VideoSet):
    """The real writer, keeping what it was given."""

    frames: ClassVar[list[np.ndarray]] = []
    audio: ClassVar[list[np.ndarray]] = []

    def write(self, frames, audio):
        RecordingVideoSet.frames.append(frames.copy())
        RecordingVideoSet.audio.append(audio.copy())
        super().write(frames, audio)


@pytest.fixture
def recorded(monkeypatch):
    from styletalker_core.sample import engine

    RecordingVideoSet.frames, RecordingVideoSet.audio = [], []
    monkeypatch.setattr(engine, "VideoSet", RecordingVideoSet)
    monkeypatch.setattr(speech_module, "CHUNK_SAMPLES", 3000)  # many decoded chunks in a short file
    return RecordingVideoSet


@pytest.mark.parametrize("settings", [
    {"seed": 2, "chunk_frames": 9},
    {"num_samples": 2, "temperature": 0.5, "chunk_frames": 40},
    {"still": True, "paste_back": True, "batch_size": 3, "chunk_frames": 8},
])
def test_sample_writes_the_one_pass_frames_and_exactly_the_speech(tmp_path, inputs, sampler, recorded, settings):
    settings = SampleSettings(align=False, **settings)
    result = sampler.run(SampleJob(inputs.image, inputs.audio, tmp_path / "talk.mp4", settings=settings))
    wave = read_audio(inputs.audio)
    frames = math.ceil(len(wave) / SPF)
    assert result.num_frames == frames and sum(f.shape[1] for f in recorded.frames) == frames
    assert np.array_equal(np.concatenate(recorded.audio), wave)  # muxed: the decoded speech, sample for sample
    w_id, _, _ = sampler.encode_reference(inputs.image, False)
    expected = sampler.head.render(torch.cat(list(sampler.head.stream_latents(
        w_id, torch.from_numpy(wave), temperature=settings.temperature, num_samples=settings.num_samples,
        still=settings.still, generator=torch.Generator().manual_seed(settings.seed))), 1))
    expected = to_uint8(expected)
    if settings.paste_back:  # the same faces pasted into the full-size picture
        expected = sampler.backdrop(inputs.image, sampler.load_reference(inputs.image, False)).composite(expected, 0)
    assert np.array_equal(np.concatenate(recorded.frames, axis=1), expected)


def test_motion_trim_muxes_the_speech_under_the_frames(tmp_path, inputs, sampler, recorded):
    settings = SampleSettings(align=False, motion_fit="trim", chunk_frames=5)
    result = sampler.run(SampleJob(inputs.image, inputs.audio, tmp_path / "talk.mp4", inputs.motion, settings))
    assert result.num_frames == inputs.motion_frames
    assert np.array_equal(np.concatenate(recorded.audio), read_audio(inputs.audio)[: inputs.motion_frames * SPF])


def test_the_mux_queue_holds_only_the_read_ahead(tmp_path, inputs, sampler, monkeypatch):
    monkeypatch.setattr(speech_module, "CHUNK_SAMPLES", 2000)
    queued = []
    take = speech_module.SpeechReader.take

    def spy(self, count):
        queued.append(sum(len(c) for c in self._queued) - self._queued_offset)
        return take(self, count)

    monkeypatch.setattr(speech_module.SpeechReader, "take", spy)
    long_audio = tmp_path / "long.wav"
    soundfile.write(long_audio, speech_like(12.0), 16000)
    settings = SampleSettings(align=False, chunk_frames=10)
    result = sampler.run(SampleJob(inputs.image, long_audio, tmp_path / "long.mp4", settings=settings))
    assert result.num_frames == 300
    assert max(queued) < 40 * SPF + 2000 < 12 * 16000 / 4


def nan_speech(path, seconds: float, at: float):
    wave = speech_like(seconds)
    wave[int(at * 16000)] = np.nan
    soundfile.write(path, wave, 16000, subtype="FLOAT")
    return path


def test_nan_late_in_the_speech_fails_naming_the_file_and_leaves_nothing(tmp_path, inputs, capsys, monkeypatch):
    import styletalker_core.plugin_host

    monkeypatch.setattr(styletalker_core.plugin_host, "get_registries", lambda: inputs.registries)
    monkeypatch.setattr(speech_module, "CHUNK_SAMPLES", 4000)  # the NaN is read after frames were written
    written = []
    write = outputs_module.VideoSet.write
    monkeypatch.setattr(outputs_module.VideoSet, "write", lambda self, f, a: written.append(f.shape[1]) or write(self, f, a))
    speech = nan_speech(tmp_path / "late.wav", 3.0, at=2.5)
    out = tmp_path / "o.mp4"
    out.write_bytes(b"old video")
    status = cli_main(["sample", "--image", str(inputs.image), "--audio", str(speech), "--out", str(out),
                       "--checkpoint", str(inputs.model), "--no-align", "--chunk-frames", "5", "--overwrite"])
    err = capsys.readouterr().err.strip()
    assert status != 0 and len(err.splitlines()) == 1
    assert str(speech) in err and "NaN or infinite samples (first at 2.50 s)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late.wav", "o.mp4"]
    assert out.read_bytes() == b"old video"
    assert sum(written) >= 50, "frames were written to the temporary before the NaN was read"


def test_nan_past_a_trimmed_end_is_still_refused(tmp_path, inputs, sampler, monkeypatch):
    monkeypatch.setattr(speech_module, "CHUNK_SAMPLES", 2000)
    speech = nan_speech(tmp_path / "tail.wav", 3.0, at=2.9)  # the motion video trims the output to 0.48 s
    settings = SampleSettings(align=False, motion_fit="trim")
    with pytest.raises(InputError, match=r"audio: .*tail\.wav: the audio has NaN"):
        sampler.run(SampleJob(inputs.image, speech, tmp_path / "o.mp4", inputs.motion, settings))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tail.wav"]


def test_short_speech_is_refused_before_the_reference_is_read(tmp_path, inputs, sampler):
    short = tmp_path / "short.wav"
    soundfile.write(short, np.zeros(3000, np.float32), 16000)
    job = SampleJob(tmp_path / "later.png", short, tmp_path / "o.mp4", settings=SampleSettings(align=False))
    (tmp_path / "later.png").write_bytes(b"not read")
    with pytest.raises(InputError, match=r"audio: .*short\.wav: only 0\.19 s long; give at least 0\.2 s"):
        sampler.run(job)
