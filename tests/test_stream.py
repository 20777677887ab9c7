"""The streaming engine (styletalker_core.sample.stream): streamed frames equal the offline
`styletalker sample` frames for any chunking of the audio, in both modes; frames leave as soon
as their audio has arrived; resampling on the fly; the lip mapper's look-ahead option; the
`styletalker stream` command.

The reference numbers are not hard-coded: every test compares the stream with the offline
path of whatever model file checkpoints/synthetic_64_model.safetensors is.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

from styletalker_core.sample.shipped import ASSETS, default_model, project_root

ROOT = project_root()
TOLERANCE = 1e-5
CHUNKS = {"10ms": 160, "25ms-odd": 401, "333ms": 5333, "1s": 16000}


@pytest.fixture(autouse=True)
def one_thread():
    """The comparisons run with one torch thread (as the rest of the suite is asked to)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def sampler():
    from styletalker_core.sample import Sampler

    path = default_model()
    if not path.is_file():
        pytest.skip(f"the shipped model {path} is missing")
    return Sampler.from_checkpoint(path)


@pytest.fixture(scope="module")
def w_id(sampler):
    return sampler.encode_reference(ROOT / ASSETS["reference"], False)[0]


@pytest.fixture(scope="module")
def wave(sampler):
    """3 s of the shipped speech plus a part of a frame (76 frames, the last one partly silence)."""
    return sampler.read_speech(ROOT / ASSETS["speech"])[: 3 * 16000 + 123]


@pytest.fixture(scope="module")
def motion(sampler):
    """Motion codes of the first 30 frames of the shipped motion video (shorter than the speech: looped)."""
    codes = sampler.encode_motion_video(ROOT / ASSETS["motion"], False, 16)
    return codes[:30]


def offline(sampler, w_id, wave, seed=0, **options):
    """What `styletalker sample` renders: stream_latents in chunks of the recipe's chunk_frames,
    the generator in batches of batch_size (engine.Sampler.run)."""
    settings = sampler.defaults
    generator = torch.Generator().manual_seed(seed)
    head = sampler.head
    options.setdefault("chunk_frames", settings.chunk_frames)
    chunks = [head.render(ws, settings.batch_size)
              for ws in head.stream_latents(w_id, torch.from_numpy(wave), generator=generator, **options)]
    return torch.cat(chunks, dim=1)


@pytest.fixture(scope="module")
def offline_once(sampler, w_id, wave):
    """:func:`offline` of the shipped speech, computed once per set of options: several tests compare
    streams of other chunkings with the same offline frames."""
    cache = {}

    def get(seed=0, **options):
        key = (seed, *sorted((name, id(value) if torch.is_tensor(value) else value) for name, value in options.items()))
        if key not in cache:
            cache[key] = offline(sampler, w_id, wave, seed=seed, **options)
        return cache[key]

    return get


def streamed(sampler, w_id, wave, chunk, seed=0, rate=None, **options):
    from styletalker_core.sample.stream import StreamSession, chunked

    session = StreamSession(sampler.head, w_id, seed=seed, sample_rate=rate, batch_size=sampler.defaults.batch_size,
                            **options)
    frames = list(session.frames(chunked(wave, chunk)))
    assert [frame.index for frame in frames] == list(range(len(frames)))
    assert all(frame.time == pytest.approx(frame.index / 25) for frame in frames)
    return torch.stack([frame.pixels for frame in frames], dim=1), session


@pytest.mark.parametrize("chunk", CHUNKS.values(), ids=CHUNKS.keys())
def test_audio_driven_stream_equals_offline(sampler, w_id, wave, offline_once, chunk):
    expected = offline_once()
    got, _ = streamed(sampler, w_id, wave, chunk)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() < TOLERANCE


@pytest.mark.parametrize("chunk, fit", [(160, "loop"), (16000, "loop"), (640, "trim")],
                         ids=["10ms-loop", "1s-loop", "40ms-trim"])
def test_motion_controllable_stream_equals_offline(sampler, w_id, wave, motion, offline_once, chunk, fit):
    expected = offline_once(motion=motion, motion_fit=fit)
    got, _ = streamed(sampler, w_id, wave, chunk, motion=motion, motion_fit=fit)
    assert got.shape == expected.shape
    assert got.shape[1] == (30 if fit == "trim" else 76)
    assert (got - expected).abs().max().item() < TOLERANCE


@pytest.mark.parametrize("options", [
    {"still": True}, {"num_samples": 2, "temperature": 0.7}, {"pose_scale": 0.5, "seed": 5},
], ids=["still", "two-samples", "pose-scale-seed"])
def test_options_stream_equals_offline(sampler, w_id, wave, options):
    options = dict(options)
    seed = options.pop("seed", 0)
    expected = offline(sampler, w_id, wave, seed=seed, **options)
    got, _ = streamed(sampler, w_id, wave, 640, seed=seed, **options)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() < TOLERANCE


def test_latents_are_bitwise_those_of_the_offline_path(sampler, w_id, wave):
    """Without the generator the streamed W+ latents are the offline ones exactly: the only
    difference left in the frames is the generator's rounding with a batch of one frame."""
    from styletalker_core.sample.stream import StreamSession, chunked

    expected = torch.cat(list(sampler.head.stream_latents(w_id, torch.from_numpy(wave),
                                                          generator=torch.Generator().manual_seed(0))), dim=1)
    session = StreamSession(sampler.head, w_id, seed=0, render=False)
    got = torch.stack([frame.pixels for frame in session.frames(chunked(wave, 160))], dim=1)
    assert (got - expected).abs().max().item() < 1e-6


def test_frames_leave_as_soon_as_their_audio_has_arrived(sampler, w_id, wave):
    from styletalker_core.sample.stream import StreamSession

    session = StreamSession(sampler.head, w_id, seed=0)
    spf, need = 640, session.lookahead_samples
    assert need == session.ahead * spf + session.reach
    assert session.ahead == max(sampler.head.prior.lookahead, sampler.head.lip_mapper.context_frames)
    fed, made = 0, 0
    for chunk in np.array_split(wave, 37):
        fed += len(chunk)
        made += len(session.feed(chunk))
        # frame t is out exactly when (t + 1) * spf + look-ahead samples are in
        assert made == max(0, (fed - need) // spf)
    made += len(session.finish())
    assert made == session.total_frames == 76
    assert session.finish() == []


def test_still_mode_waits_only_for_the_lip_mapper(sampler, w_id):
    from styletalker_core.sample.stream import StreamSession

    still = StreamSession(sampler.head, w_id, still=True)
    assert still.ahead == sampler.head.lip_mapper.context_frames
    assert still.lookahead_seconds == pytest.approx((still.ahead * 640 + still.reach) / 16000)


def test_resampled_stream_equals_sample_reading_the_same_samples(sampler, w_id, wave, tmp_path):
    """44.1 kHz float chunks resampled on the fly give the frames `sample` makes from a float WAV
    of the same samples (both through libswresample)."""
    import soundfile

    from styletalker_core.sample.stream import StreamResampler

    high = StreamResampler(16000, 44100)(wave)
    path = tmp_path / "speech44.wav"
    soundfile.write(path, high, 44100, subtype="FLOAT")
    read = sampler.read_speech(path)
    expected = offline(sampler, w_id, read)
    got, session = streamed(sampler, w_id, high, 441, rate=44100)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() < TOLERANCE
    assert session.resampler is not None


def test_resampler_does_not_depend_on_the_chunking():
    from styletalker_core.sample.stream import StreamResampler

    signal = np.random.default_rng(0).standard_normal(48000).astype(np.float32) * 0.1

    def run(size):
        resampler = StreamResampler(48000, 16000)
        pieces = [resampler(signal[i: i + size]) for i in range(0, len(signal), size)]
        return np.concatenate([*pieces, resampler.flush()])

    whole = run(len(signal))
    assert len(whole) == 16000
    for size in (1, 37, 480, 4800):
        assert np.array_equal(run(size), whole)


def test_int16_chunks_are_scaled_like_the_file_reader(sampler, w_id, wave):
    from styletalker_core.sample.stream import StreamSession

    pcm = np.round(wave * 32767).astype(np.int16)
    a = StreamSession(sampler.head, w_id, render=False)
    b = StreamSession(sampler.head, w_id, render=False)
    first = [f.pixels for f in a.frames([pcm])]
    second = [f.pixels for f in b.frames([pcm.astype(np.float32) / 32768])]
    assert all(torch.equal(x, y) for x, y in zip(first, second, strict=True))


def test_bad_chunks_are_refused(sampler, w_id):
    from styletalker_core.errors import StyleTalkerError
    from styletalker_core.sample.stream import StreamSession

    session = StreamSession(sampler.head, w_id)
    with pytest.raises(StyleTalkerError, match="NaN or infinite"):
        session.feed(np.array([0.0, np.nan], dtype=np.float32))
    with pytest.raises(StyleTalkerError, match="mono"):
        session.feed(np.zeros((2, 3, 4), np.float32))
    session.finish()
    with pytest.raises(StyleTalkerError, match="closed"):
        session.feed(np.zeros(10, np.float32))


def test_memory_stays_flat(sampler, w_id):
    from styletalker_core.sample.stream import StreamSession

    session = StreamSession(sampler.head, w_id, render=False)
    rng = np.random.default_rng(1)
    for _ in range(200):
        session.feed(rng.standard_normal(640).astype(np.float32) * 0.05)
    assert session._wave.size <= 8 * 640
    assert session._features.shape[1] <= sampler.head.lip_mapper.context_frames + 8


# -- the lip mapper's look-ahead option --------------------------------------------------------
def test_lip_mapper_lookahead_option():
    from styletalker_motion.lip_mapper import ConvLipMapper

    torch.manual_seed(0)
    default = ConvLipMapper(num_ws=2, w_dim=4, feature_dim=3, context_frames=4, hidden=8)
    assert default.lookahead_frames == 4 and default.conv.kernel_size == (9,) and default.conv.padding == (4,)
    causal = ConvLipMapper(num_ws=2, w_dim=4, feature_dim=3, context_frames=4, hidden=8, lookahead_frames=0)
    assert causal.conv.kernel_size == (5,)
    two = ConvLipMapper(num_ws=2, w_dim=4, feature_dim=3, context_frames=4, hidden=8, lookahead_frames=2)
    features, w_id = torch.randn(1, 20, 3), torch.randn(1, 2, 4)
    for mapper, ahead in ((default, 4), (causal, 0), (two, 2)):
        out = mapper(features, w_id)
        changed = features.clone()
        changed[:, 10] += 1.0
        moved = (mapper(changed, w_id) - out).abs().flatten(2).amax(-1)[0] > 0
        # frame t reads t - 4 .. t + ahead: a change at frame 10 moves frames 10 - ahead .. 14
        assert moved.nonzero().flatten().tolist() == list(range(10 - ahead, 15))
    with pytest.raises(ValueError, match="lookahead_frames"):
        ConvLipMapper(num_ws=2, w_dim=4, feature_dim=3, context_frames=4, lookahead_frames=5)


def test_shipped_model_keeps_its_lip_mapper(sampler):
    mapper = sampler.head.lip_mapper
    assert mapper.lookahead_frames == mapper.context_frames


def test_short_lookahead_lip_mapper_streams_exactly(sampler, w_id, wave):
    """A model with a look-ahead-2 lip mapper (weights cut from the shipped one: untrained, for
    the arithmetic only) still streams exactly, and waits two frames less."""
    import copy

    from styletalker_core.sample.stream import StreamSession
    from styletalker_motion.lip_mapper import ConvLipMapper

    head = copy.deepcopy(sampler.head)
    old = head.lip_mapper
    k = old.context_frames
    new = ConvLipMapper(old.num_ws, old.w_dim, old.feature_dim, context_frames=k, hidden=old.conv.out_channels,
                        layers=list(old.layers), identity_conditioning=old.identity is not None, lookahead_frames=2)
    state = old.state_dict()
    state["conv.weight"] = state["conv.weight"][:, :, : k + 1 + 2]
    new.load_state_dict(state)
    head.lip_mapper = new.eval()
    expected = torch.cat([head.render(ws, 16) for ws in head.stream_latents(
        w_id, torch.from_numpy(wave), generator=torch.Generator().manual_seed(0))], dim=1)
    session = StreamSession(head, w_id, seed=0)
    assert session.ahead == max(2, head.prior.lookahead)
    got = torch.stack([f.pixels for f in session.frames(np.array_split(wave, 50))], dim=1)
    assert (got - expected).abs().max().item() < TOLERANCE


# -- the command -------------------------------------------------------------------------------
def run_cli(args, stdin=b"", cwd=None):
    return subprocess.run([sys.executable, "-m", "styletalker_core.cli.main", "stream", *args], input=stdin,
                          capture_output=True, cwd=cwd, timeout=120,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})


def wav_bytes(wave: np.ndarray, rate: int = 16000, streamed_size: bool = False) -> bytes:
    data = np.round(np.clip(wave, -1, 1) * 32767).astype("<i2").tobytes()
    size = 0xFFFFFFFF if streamed_size else len(data)
    header = b"RIFF" + struct.pack("<I", 0xFFFFFFFF if streamed_size else 36 + len(data)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    return header + b"data" + struct.pack("<I", size) + data


def test_cli_raw_rgb_frames_equal_the_engine(sampler, w_id, wave):
    """s16le on stdin -> raw RGB on stdout: the frames of the engine, rounded to uint8."""
    from styletalker_core.sample.stream import StreamSession

    pcm = np.round(wave * 32767).astype("<i2")
    done = run_cli(["--image", str(ROOT / ASSETS["reference"]), "--no-align", "--input-format", "s16le",
                    "--rate", "16000", "--output-format", "rgb24"], pcm.tobytes())
    assert done.returncode == 0, done.stderr.decode()
    frames = np.frombuffer(done.stdout, np.uint8).reshape(-1, 64, 64, 3)
    session = StreamSession(sampler.head, w_id, seed=0)
    expected = np.stack([f.rgb() for f in session.frames([pcm.astype(np.float32) / 32768])])
    assert frames.shape == expected.shape == (76, 64, 64, 3)
    assert np.abs(frames.astype(int) - expected.astype(int)).max() <= 1
    assert "76 frames" in done.stderr.decode()


def test_cli_wav_stream_to_fragmented_mp4(tmp_path, wave, monkeypatch):
    """In process (the command's subprocess path is the raw-frames test above): WAV with an unknown
    size on stdin -> a fragmented mp4 file."""
    import av

    from styletalker_core.cli.main import main

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(wav_bytes(wave, streamed_size=True)))))
    assert main(["stream", "--image", str(ROOT / ASSETS["reference"]), "--no-align", "--out", str(tmp_path / "talk.mp4")]) == 0
    data = (tmp_path / "talk.mp4").read_bytes()
    assert b"moof" in data and b"mvex" in data  # fragmented, moov first
    with av.open(str(tmp_path / "talk.mp4")) as container:
        frames = sum(1 for _ in container.decode(video=0))
        assert container.streams.audio
    assert frames == 76


@pytest.mark.parametrize("args, stdin, message", [
    (["--image", "missing.png"], b"", "reference: missing.png: no such file"),
    (["--image", "REF", "--input", "nothing.wav"], b"", "audio: nothing.wav: no such file"),
    (["--image", "REF"], b"not a wav at all", "audio: stdin: not a WAV stream"),
    (["--image", "REF", "--input-format", "s16le"], b"\0\0", "needs its sample rate"),
    (["--image", "REF", "--input-format", "f32le", "--rate", "16000"], np.array([np.nan], "<f4").tobytes(),
     "audio: stdin: the audio has NaN"),
    (["--image", "REF", "--temperature", "-1"], b"", "--temperature -1"),
])
def test_cli_errors_are_one_line_naming_the_input(args, stdin, message, tmp_path, monkeypatch, capsys):
    from styletalker_core.cli.main import main

    args = [str(ROOT / ASSETS["reference"]) if a == "REF" else a for a in args]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(stdin))))
    status = main(["stream", *args, "--no-align", "--out", str(tmp_path / "x.mp4")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1 and err[0].startswith("styletalker: error: ") and message in err[0], err
    assert not (tmp_path / "x.mp4").exists()


def test_wav_header_parser_reads_float_and_extensible():
    from styletalker_core.cli.stream_command import pcm_chunks, read_wav_header

    samples = np.linspace(-0.5, 0.5, 100, dtype="<f4")
    fmt = struct.pack("<HHIIHH", 0xFFFE, 2, 8000, 8000 * 8, 8, 32) + struct.pack("<HHI", 22, 32, 3) + struct.pack("<H", 3) + bytes(14)
    stereo = np.stack([samples, samples], axis=1).tobytes()
    blob = b"RIFF" + struct.pack("<I", 0) + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    blob += b"LIST" + struct.pack("<I", 3) + b"abc\0" + b"data" + struct.pack("<I", len(stereo)) + stereo
    stream = io.BufferedReader(io.BytesIO(blob))
    pcm, size = read_wav_header(stream)
    assert (pcm.kind, pcm.width, pcm.channels, pcm.rate, size) == ("float", 4, 2, 8000, len(stereo))
    got = np.concatenate(list(pcm_chunks(stream, pcm, 0.001, size)))
    assert np.array_equal(got, samples)


@pytest.mark.parametrize("args, message", [
    (["--port", "0"], "--port 0: give a port from 1 to 65535"),
    (["--max-seconds", "0"], "--max-seconds 0: give a positive number"),
    (["--work-dir", "FILE"], "is a file; give a folder"),
])
def test_app_command_refuses_bad_options_in_one_line(args, message, tmp_path, capsys):
    """`styletalker app` checks its options before anything starts (its pages: tests/test_app_browser.py)."""
    from styletalker_core.cli.main import main

    target = tmp_path / "a-file"
    target.write_text("x")
    status = main(["app", *[str(target) if a == "FILE" else a for a in args]])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and message in err[0], err
