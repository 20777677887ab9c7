"""Speech conditions of an evaluation (styletalker_core/ablate/speech.py): the test clips driven by
phone-band eSpeak speech and by their sentences spoken by other engines.

The engines are mocked by a small WAV writer run through the same subprocess path (no flite or
festival needed); one test runs the real flite when /usr/bin/flite exists."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from sample_toys import speech_like
from test_ablate import ORIGIN, ToyAutoencodeStage, write_recipes
from test_talking_head_toys import toy_components, toy_registries

from styletalker_core.ablate import speech
from styletalker_core.ablate.clips import HeldoutClip, load_clips
from styletalker_core.ablate.generation import generate_items
from styletalker_core.ablate.speech import (
    ENGINES,
    SpeechEngine,
    condition_clips,
    mode_key,
    parse_conditions,
    place_speech,
    read_wav_16k,
    split_mode_key,
)
from styletalker_core.cli.main import main
from styletalker_core.data.shards import Clip, ShardWriter
from styletalker_core.data.synthetic import IDENTITY_DIM, render_faces
from styletalker_core.errors import StyleTalkerError
from styletalker_core.model import TalkingHead

FRAMES = 30
SPEECH_START, SPEECH_END = 0.2, 0.9

# A stand-in engine: writes an 8 kHz 16-bit WAV with 0.15 s of a tone per word of the text, after
# 0.1 s of silence (which place_speech trims) - what flite does, minus the voice.
WRITER = textwrap.dedent("""
    import sys, wave, numpy as np
    out, text = sys.argv[1], sys.argv[2]
    rate = 8000
    words = len(text.split())
    t = np.arange(int(0.15 * words * rate)) / rate
    tone = 0.5 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    samples = np.concatenate([np.zeros(int(0.1 * rate)), tone, np.zeros(int(0.1 * rate))])
    with wave.open(out, "wb") as handle:
        handle.setnchannels(1); handle.setsampwidth(2); handle.setframerate(rate)
        handle.writeframes((samples * 32767).astype("<i2").tobytes())
""")


@pytest.fixture
def fake_engines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """flite and festival replaced by the WAV writer (same subprocess path, same placeholders)."""
    script = tmp_path / "fake_tts.py"
    script.write_text(WRITER)
    for name in ("flite", "festival"):
        monkeypatch.setitem(ENGINES, name, SpeechEngine(name, (sys.executable, str(script), "{out}", "{text}"), "test"))
    return script


def clip_with_text(transcript: str | None = "one two three four", seconds: float = FRAMES / 25) -> HeldoutClip:
    audio = torch.zeros(int(seconds * 16000))
    start, end = int(SPEECH_START * 16000), int(SPEECH_END * 16000)
    audio[start:end] = torch.from_numpy(speech_like((end - start) / 16000, seed=1)) * 1.5
    meta = {"speech_start": SPEECH_START, "speech_end": SPEECH_END}
    if transcript is not None:
        meta["transcript"] = transcript
    frames = torch.zeros(int(seconds * 25), 3, 16, 16)
    return HeldoutClip("c0", frames, audio, {"mouth_open": torch.zeros(len(frames))}, meta=meta)


def high_band_share(audio: torch.Tensor, cutoff: float = 4200.0) -> float:
    power = torch.fft.rfft(audio).abs() ** 2
    frequencies = torch.fft.rfftfreq(len(audio), 1 / 16000)
    return float(power[frequencies > cutoff].sum() / power.sum())


def test_conditions_are_parsed_and_checked() -> None:
    assert parse_conditions("espeak, phone,flite,festival") == ("espeak", "phone", "flite", "festival")
    with pytest.raises(StyleTalkerError, match="choose from espeak, phone, flite, festival"):
        parse_conditions("espeak,mbrola")
    with pytest.raises(StyleTalkerError, match="each condition once"):
        parse_conditions("phone,phone")
    assert mode_key("audio", "espeak") == "audio" and mode_key("audio", "flite") == "audio@flite"
    assert split_mode_key("audio@flite") == ("audio", "flite") and split_mode_key("motion") == ("motion", "espeak")


def test_phone_band_keeps_timing_labels_and_frames() -> None:
    clip = clip_with_text()
    assert high_band_share(clip.audio) > 0.2
    [phone] = condition_clips([clip], "phone")
    assert phone.aligned and phone.labels is clip.labels and phone.frames is clip.frames
    assert phone.audio.shape == clip.audio.shape
    assert high_band_share(phone.audio) < 0.01  # next to nothing above the 8 kHz channel's 4 kHz survives
    assert condition_clips([clip], "espeak") == [clip]


def test_engine_speech_is_placed_in_the_clips_timeline(fake_engines: Path) -> None:
    clip = clip_with_text("one two three four five six seven eight")  # 1.2 s of engine speech, longer than eSpeak's
    [spoken] = condition_clips([clip], "flite")
    assert not spoken.aligned and spoken.labels == {} and spoken.clip_id == "c0"
    audio = spoken.audio
    assert len(audio) % 640 == 0  # whole video frames
    start = int(SPEECH_START * 16000)
    assert audio[:start - 1].abs().max() == 0  # the clip's leading silence is kept
    loud = torch.nonzero(audio.abs() > 0.02 * audio.abs().max()).flatten()
    assert abs(int(loud[0]) - start) <= 2 and abs((int(loud[-1]) - int(loud[0])) / 16000 - 1.2) < 0.02
    tail = len(clip.audio) - int(SPEECH_END * 16000)
    assert len(audio) - int(loud[-1]) >= tail - 2  # then the clip's trailing silence
    peak = float(clip.audio.abs().max())
    assert float(audio.abs().max()) == pytest.approx(peak, rel=1e-4)  # at the clip's speech level
    # festival goes through the same path
    assert not condition_clips([clip], "festival")[0].aligned


def test_engine_problems_are_user_errors(fake_engines: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(StyleTalkerError, match="no sentence text"):
        condition_clips([clip_with_text(None)], "flite")
    monkeypatch.setitem(ENGINES, "flite", SpeechEngine("flite", ("no-such-tts-program", "{out}"), "apt-get install -y flite"))
    with pytest.raises(StyleTalkerError, match=r"no-such-tts-program not found; install it \(apt-get install -y flite\)"):
        condition_clips([clip_with_text()], "flite")
    failing = SpeechEngine("flite", (sys.executable, "-c", "import sys; sys.exit('voice missing')"), "x")
    with pytest.raises(StyleTalkerError, match=r"failed .exit 1.: voice missing"):
        failing.synthesize("hello")
    with pytest.raises(StyleTalkerError, match="wrote silence"):
        place_speech(clip_with_text(), torch.zeros(800))


def test_wav_reader_resamples_to_16k(tmp_path: Path) -> None:
    import wave

    path = tmp_path / "stereo_8k.wav"
    t = np.arange(8000) / 8000
    samples = np.stack([0.5 * np.sin(2 * np.pi * 300 * t)] * 2, axis=1)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(2), handle.setsampwidth(2), handle.setframerate(8000)
        handle.writeframes((samples * 32767).astype("<i2").tobytes())
    audio = read_wav_16k(path)
    assert audio.dtype == torch.float32 and abs(len(audio) - 16000) <= 2
    assert float(audio.abs().max()) == pytest.approx(0.5, abs=0.02)


def speech_dataset(root: Path) -> Path:
    """4 clips (the last two held out) with sentences and speech times, like `styletalker data synth` writes."""
    clips = []
    for index in range(4):
        t = torch.arange(FRAMES, dtype=torch.float32)
        generator = torch.Generator().manual_seed(index)
        labels = {"pose": torch.stack([5 * torch.sin(t / 4), 0 * t, 0 * t], -1), "eye_open": torch.ones(FRAMES),
                  "mouth_open": 0.5 + 0.5 * torch.sin(t / 2), "mouth_width": torch.full((FRAMES,), 0.5),
                  "identity": torch.rand(IDENTITY_DIM, generator=generator).expand(FRAMES, -1)}
        images = render_faces(labels["identity"][0], labels["pose"], labels["eye_open"], labels["mouth_open"],
                              labels["mouth_width"], resolution=32, supersample=1)
        frames = (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
        audio = np.zeros(FRAMES * 640, np.float32)
        audio[int(SPEECH_START * 16000):int(SPEECH_END * 16000)] = speech_like(SPEECH_END - SPEECH_START, seed=index)
        meta = {"split": "heldout" if index >= 2 else "train", "transcript": "told slow then more talk",
                "speech_start": SPEECH_START, "speech_end": SPEECH_END}
        clips.append(Clip(f"clip{index}", frames, audio, labels={k: v.numpy().astype(np.float32) for k, v in labels.items()},
                          meta=meta))
    writer = ShardWriter(root)
    writer.write("0000", clips)
    writer.finalize()
    return root


def test_unaligned_clips_generate_audio_items_without_references(tmp_path: Path, fake_engines: Path) -> None:
    registries = toy_registries()
    from styletalker_core.checkpoint import save_checkpoint

    model = save_checkpoint(tmp_path / "model.safetensors", toy_components(registries), recipe={"name": "toy"})
    head = TalkingHead.from_checkpoint(model, registries)
    clips = load_clips(speech_dataset(tmp_path / "data"), 2, explicit=False)
    assert clips[0].meta["transcript"] == "told slow then more talk"  # the clip metadata travels with the clip
    [(name, item, _)] = list(generate_items(head, condition_clips(clips[:1], "flite"), "audio"))
    assert name == "clip2" and item.reference_frames is None and item.labels == {}
    assert item.reference_image is not None and len(item.frames) == len(item.audio) // 640
    with pytest.raises(ValueError, match="only the audio mode"):
        list(generate_items(head, condition_clips(clips, "flite"), "motion"))


def test_evaluate_model_with_speech_conditions(tmp_path: Path, fake_engines: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`evaluate --model --speech`: one audio report per condition; engine speech is scored only by metrics
    that need no labels, and mouth_envelope is added."""
    registries = toy_registries()
    registries["stage"].register("toy_autoencode", ToyAutoencodeStage, ORIGIN)  # the toy recipe's stage
    from styletalker_core.checkpoint import save_checkpoint

    monkeypatch.setattr("styletalker_core.plugin_host.get_registries", lambda: registries)
    model = save_checkpoint(tmp_path / "model.safetensors", toy_components(registries), recipe={"name": "toy"})
    base, _ = write_recipes(tmp_path, speech_dataset(tmp_path / "data"))
    out = tmp_path / "results.json"
    assert main(["evaluate", "--model", str(model), "--recipe", str(base), "--modes", "audio,motion",
                 "--speech", "espeak,phone,flite", "--metrics", "psnr", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "## audio-driven, Flite speech" in printed and "## audio-driven, eSpeak NG, phone-band (8 kHz) speech" in printed
    document = json.loads(out.read_text())
    assert document["speech"] == ["espeak", "phone", "flite"]
    assert list(document["modes"]) == ["audio", "audio@phone", "audio@flite", "motion"]
    assert document["modes"]["audio"]["summary"]["psnr"]["count"] == 2
    assert document["modes"]["audio@phone"]["summary"]["psnr"]["count"] == 2  # still aligned: scored against the clip
    flite = document["modes"]["audio@flite"]
    assert flite["summary"]["psnr"]["count"] == 0 and "reference_frames" in flite["items"][0]["skipped"]["psnr"]
    assert "mouth_envelope" in [metric["name"] for metric in flite["metrics"]]
    assert "mouth_envelope_corr" in flite["items"][0]["values"]
    assert main(["evaluate", "--model", str(model), "--recipe", str(base), "--modes", "motion", "--speech", "phone",
                 "--out", str(out)]) == 2
    assert "add audio to --modes" in capsys.readouterr().err


@pytest.mark.skipif(not Path("/usr/bin/flite").exists(),
                    reason="/usr/bin/flite is not installed (apt-get update && apt-get install -y flite)")
def test_real_flite_speaks_a_sentence() -> None:
    audio = speech.ENGINES["flite"].synthesize("told slow then more talk")
    assert audio.dtype == torch.float32 and 0.8 < len(audio) / 16000 < 4.0
    assert float(audio.abs().max()) > 0.05
    assert high_band_share(audio) < 0.01  # flite's default voice writes 8 kHz: phone-band speech
    [spoken] = condition_clips([clip_with_text("told slow then more talk", seconds=3.0)], "flite")
    assert not spoken.aligned and len(spoken.audio) % 640 == 0


def test_ablate_with_speech_conditions_compares_them_with_espeak(tmp_path: Path, fake_engines: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`ablate --speech`: one table per condition, a speech-conditions table, and each condition's paired
    difference from eSpeak's own speech in the JSON."""
    registries = toy_registries()
    registries["stage"].register("toy_autoencode", ToyAutoencodeStage, ORIGIN)
    from styletalker_core.checkpoint import save_checkpoint

    monkeypatch.setattr("styletalker_core.plugin_host.get_registries", lambda: registries)
    model = save_checkpoint(tmp_path / "model.safetensors", toy_components(registries), recipe={"name": "toy"})
    base, _ = write_recipes(tmp_path, speech_dataset(tmp_path / "data"))
    out = tmp_path / "ablation"
    assert main(["ablate", str(base), "--model", str(model), "--modes", "audio", "--speech", "espeak,festival",
                 "--metrics", "psnr,lse", "--videos", "0", "--out", str(out)]) == 0
    table = (out / "ablation.md").read_text()
    assert "## audio-driven, Festival speech" in table and "## Speech conditions (audio-driven)" in table
    assert "| toy_flow | Festival | " in table and "--speech espeak,festival" in table
    summary = json.loads((out / "ablation.json").read_text())
    assert summary["modes"] == ["audio", "audio@festival"] and summary["speech"] == ["espeak", "festival"]
    difference = summary["speech_minus_espeak"]["toy_flow"]["audio@festival"]["lse_c"]
    assert difference["count"] == 2 and isinstance(difference["differs"], bool)
    assert (out / "toy_flow" / "audio@festival.json").is_file()
