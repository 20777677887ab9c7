"""The sampling engine: both modes, samples, seeds, still mode, overwrite rule, all-or-nothing writes, bad inputs."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from sample_toys import RESOLUTION, SampleInputs, make_inputs

from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces.image_encoder import OutOfDomainWarning
from styletalker_core.media import probe_audio, probe_video, read_audio, read_video_frames, write_audio, write_image
from styletalker_core.sample import InputError, SampleJob, Sampler, SampleSettings, settings_from_recipe, with_overrides
from styletalker_core.sample.faces import prepare_reference, to_tensor


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> SampleInputs:
    return make_inputs(tmp_path_factory.mktemp("inputs"))


@pytest.fixture(scope="module")
def sampler(inputs) -> Sampler:
    return Sampler.from_checkpoint(inputs.model, inputs.registries)


def job(inputs: SampleInputs, out, motion=None, **settings) -> SampleJob:
    return SampleJob(inputs.image, inputs.audio, out, motion, SampleSettings(align=False, **settings))


def leftovers(folder) -> list[str]:
    """Files of ``folder`` that are neither inputs nor expected outputs: temporary or partial files."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_defaults_come_from_the_recipe_and_overrides_convert_text():
    defaults = settings_from_recipe({"sample": {"temperature": 0.7, "align": False, "chunk_frames": 100}})
    assert (defaults.temperature, defaults.align, defaults.chunk_frames, defaults.seed) == (0.7, False, 100, 0)
    assert settings_from_recipe(None) == SampleSettings()
    changed = with_overrides(defaults, {"seed": "5", "still": "yes", "pose_scale": "0.5", "temperature": ""}, "row 2")
    assert (changed.seed, changed.still, changed.pose_scale, changed.temperature) == (5, True, 0.5, 0.7)
    with pytest.raises(StyleTalkerError, match=r"row 2: seed '1.5': give a whole number"):
        with_overrides(defaults, {"seed": "1.5"}, "row 2")
    with pytest.raises(StyleTalkerError, match=r"row 2: unknown setting 'sed'"):
        with_overrides(defaults, {"sed": 1}, "row 2")
    with pytest.raises(StyleTalkerError, match=r"num-samples 0: give a whole number of at least 1"):
        SampleSettings(num_samples=0)


def test_audio_driven_video_has_the_audio_length_and_its_sound(tmp_path, inputs, sampler):
    result = sampler.run(job(inputs, tmp_path / "talk.mp4"))
    frames = math.ceil(inputs.audio_seconds * 25)
    assert result.outputs == [tmp_path / "talk.mp4"] and result.num_frames == frames
    info = probe_video(result.outputs[0])
    assert (info.width, info.height, info.num_frames, info.codec, info.has_audio) == (RESOLUTION, RESOLUTION, frames, "h264", True)
    assert probe_audio(result.outputs[0]).codec == "aac"
    sound = read_audio(result.outputs[0])
    assert abs(len(sound) - frames * 640) <= 640
    # the muxed sound is the input speech (AAC is lossy: compare loudness envelopes)
    original = read_audio(inputs.audio)
    n = min(len(sound), len(original)) // 640 * 640
    envelope = [np.sqrt((x[:n].reshape(-1, 640) ** 2).mean(1)) for x in (sound, original)]
    assert np.corrcoef(*envelope)[0, 1] > 0.95
    assert set(result.timings) == {"audio", "reference", "latents", "generator", "writing"}
    assert leftovers(tmp_path) == []


def test_video_frames_are_the_models_frames(tmp_path, inputs, sampler):
    result = sampler.run(job(inputs, tmp_path / "talk.mp4", crf=0, seed=3))
    image = to_tensor(prepare_reference(inputs.image, RESOLUTION, False, sampler.aligner))
    expected = sampler.head.generate(image, torch.from_numpy(read_audio(inputs.audio)), generator=torch.Generator().manual_seed(3))[0]
    expected = expected.movedim(1, -1).add(1).mul(127.5).round().clamp(0, 255).numpy()
    written = read_video_frames(result.outputs[0]).astype(np.float32)
    assert written.shape == expected.shape
    luma = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # lossless x264 keeps luma; chroma is subsampled
    assert np.abs(written @ luma - expected @ luma).mean() < 2.0


def test_several_samples_differ_and_seeds_reproduce(tmp_path, inputs, sampler):
    first = sampler.run(job(inputs, tmp_path / "a.mp4", num_samples=2, seed=1, crf=0))
    assert [p.name for p in first.outputs] == ["a_0.mp4", "a_1.mp4"]
    videos = [read_video_frames(p).astype(np.float32) for p in first.outputs]
    assert np.abs(videos[0] - videos[1]).mean() > 1.0
    again = sampler.run(job(inputs, tmp_path / "b.mp4", num_samples=2, seed=1, crf=0))
    assert np.array_equal(read_video_frames(again.outputs[1]), videos[1].astype(np.uint8))
    other = sampler.run(job(inputs, tmp_path / "c.mp4", seed=2, crf=0))
    assert np.abs(read_video_frames(other.outputs[0]).astype(np.float32) - videos[0]).mean() > 1.0


def test_still_mode_has_no_motion(tmp_path, inputs, sampler):
    still = [sampler.run(job(inputs, tmp_path / f"still{seed}.mp4", still=True, seed=seed, crf=0)) for seed in (0, 1)]
    frames = [read_video_frames(r.outputs[0]) for r in still]
    assert np.array_equal(frames[0], frames[1]), "still mode draws no motion, so the seed changes nothing"
    zero_pose = sampler.run(job(inputs, tmp_path / "zero.mp4", pose_scale=0.0, seed=4, crf=0))
    assert np.array_equal(read_video_frames(zero_pose.outputs[0]), frames[0])
    moving = sampler.run(job(inputs, tmp_path / "moving.mp4", seed=0, crf=0))
    assert np.abs(read_video_frames(moving.outputs[0]).astype(np.float32) - frames[0]).mean() > 1.0


def test_motion_controlled_video_loops_or_trims_the_motion(tmp_path, inputs, sampler):
    looped = sampler.run(job(inputs, tmp_path / "loop.mp4", inputs.motion))
    assert looped.num_frames == math.ceil(inputs.audio_seconds * 25) and "motion" in looped.timings
    trimmed = sampler.run(job(inputs, tmp_path / "trim.mp4", inputs.motion, motion_fit="trim"))
    assert trimmed.num_frames == inputs.motion_frames
    assert probe_video(trimmed.outputs[0]).num_frames == inputs.motion_frames
    assert abs(len(read_audio(trimmed.outputs[0])) - inputs.motion_frames * 640) <= 640  # audio cut with the video
    # the motion comes from the video: the same seeds give other frames than audio-driven sampling
    driven = sampler.run(job(inputs, tmp_path / "driven.mp4"))
    difference = read_video_frames(looped.outputs[0]).astype(np.float32) - read_video_frames(driven.outputs[0])
    assert np.abs(difference).mean() > 1.0


def test_motion_mode_refuses_several_samples_and_still(tmp_path, inputs, sampler):
    with pytest.raises(StyleTalkerError, match="several samples need the audio-driven mode"):
        sampler.run(job(inputs, tmp_path / "x.mp4", inputs.motion, num_samples=2))
    with pytest.raises(StyleTalkerError, match="--still has no head motion"):
        sampler.run(job(inputs, tmp_path / "x.mp4", inputs.motion, still=True))
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_refused_unless_overwrite(tmp_path, inputs, sampler):
    out = tmp_path / "talk.mp4"
    sampler.run(job(inputs, out, seed=0))
    before = out.read_bytes()
    with pytest.raises(StyleTalkerError, match=r"talk\.mp4: already exists; pass --overwrite"):
        sampler.run(job(inputs, out, seed=1))
    assert out.read_bytes() == before
    # one existing file of several samples is enough to refuse the whole job
    (tmp_path / "many_1.mp4").write_bytes(b"keep")
    with pytest.raises(StyleTalkerError, match=r"many_1\.mp4: already exists"):
        sampler.run(job(inputs, tmp_path / "many.mp4", num_samples=2))
    assert not (tmp_path / "many_0.mp4").exists() and (tmp_path / "many_1.mp4").read_bytes() == b"keep"
    sampler.run(job(inputs, out, seed=1), overwrite=True)
    assert out.read_bytes() != before and probe_video(out).num_frames == math.ceil(inputs.audio_seconds * 25)
    with pytest.raises(StyleTalkerError, match="is also an input of this job"):
        sampler.run(job(inputs, inputs.motion, inputs.motion), overwrite=True)


def test_failure_midway_leaves_nothing_and_keeps_the_old_file(tmp_path, inputs, sampler, monkeypatch):
    out = tmp_path / "talk.mp4"
    out.write_bytes(b"old video")
    calls = []

    def failing_render(ws, batch_size=16):
        calls.append(ws.shape[1])
        if len(calls) == 2:
            raise RuntimeError("generator crashed")
        return type(sampler.head).render(sampler.head, ws, batch_size)

    monkeypatch.setattr(sampler.head, "render", failing_render)
    with pytest.raises(RuntimeError, match="generator crashed"):
        sampler.run(job(inputs, out, num_samples=2, chunk_frames=10), overwrite=True)
    monkeypatch.undo()
    assert len(calls) == 2, "the first chunk was rendered and written before the failure"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.mp4"]
    assert out.read_bytes() == b"old video"


def test_bad_inputs_are_one_line_naming_the_input(tmp_path, inputs, sampler):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    short = tmp_path / "short.wav"
    write_audio(short, np.zeros(1600, dtype=np.float32))  # 0.1 s
    noise = tmp_path / "noise.png"
    write_image(noise, np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8))
    cases = [
        (SampleJob(tmp_path / "missing.png", inputs.audio, tmp_path / "o.mp4"), r"reference: .*missing\.png: no such file; check the path"),
        (SampleJob(inputs.image, tmp_path / "missing.wav", tmp_path / "o.mp4"), r"audio: .*missing\.wav: no such file"),
        (SampleJob(inputs.image, inputs.audio, tmp_path / "o.mp4", tmp_path / "nope.mp4"), r"motion: .*nope\.mp4: no such file"),
        (SampleJob(text, inputs.audio, tmp_path / "o.mp4", settings=SampleSettings(align=False)), r"reference: .*notes\.png: not a readable image"),
        (SampleJob(inputs.image, short, tmp_path / "o.mp4", settings=SampleSettings(align=False)),
         r"audio: .*short\.wav: only 0\.10 s long; give at least 0\.2 s of speech"),
        (SampleJob(inputs.image, text, tmp_path / "o.mp4", settings=SampleSettings(align=False)), r"audio: .*notes\.png"),
        (SampleJob(noise, inputs.audio, tmp_path / "o.mp4", settings=SampleSettings(align=True)),
         r"reference: .*noise\.png: no face found; .*--no-align"),
        (SampleJob(inputs.image, inputs.audio, tmp_path / "o.avi"), r"output .*o\.avi: give a name ending in \.mp4"),
    ]
    for bad_job, message in cases:
        with pytest.raises(StyleTalkerError, match=message) as caught:
            sampler.run(bad_job)
        assert "\n" not in str(caught.value)
        assert not (tmp_path / "o.mp4").exists()
    assert isinstance(caught.value, StyleTalkerError)
    assert issubclass(InputError, StyleTalkerError)
    assert leftovers(tmp_path) == []


def test_out_of_domain_reference_warns_naming_the_file(tmp_path, inputs, sampler):
    encoder = sampler.head.image_encoder
    encoder.set_ood_threshold(200.0)  # no reconstruction reaches 200 dB
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = sampler.run(job(inputs, tmp_path / "talk.mp4"))
    finally:
        encoder.set_ood_threshold(0.0)
    messages = [str(w.message) for w in caught if issubclass(w.category, OutOfDomainWarning)]
    assert len(messages) == 1 and str(inputs.image) in messages[0] and "below this encoder's out-of-domain" in messages[0]
    assert result.in_domain is False and result.reference_psnr < 200


def test_memory_is_bounded_by_the_chunk_not_the_audio(tmp_path, inputs, sampler, monkeypatch):
    """Frames reach the writer chunk by chunk, each chunk rendered a batch at a time: no call holds
    more than batch_size frames, and batches restart at every chunk of chunk_frames."""
    long_audio = tmp_path / "long.wav"
    write_audio(long_audio, np.tile(read_audio(inputs.audio), 4))
    sizes = []
    render = sampler.head.render
    monkeypatch.setattr(sampler.head, "render", lambda ws, batch_size=16: sizes.append(ws.shape[1]) or render(ws, batch_size))
    settings = SampleSettings(align=False, chunk_frames=25, batch_size=10)
    result = sampler.run(SampleJob(inputs.image, long_audio, tmp_path / "long.mp4", settings=settings))
    assert sum(sizes) == result.num_frames == math.ceil(4 * inputs.audio_seconds * 25) == 120
    assert sizes == [10, 10, 5] * 4 + [10, 10]
