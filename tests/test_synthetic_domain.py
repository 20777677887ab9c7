"""The synthetic talking-face domain: identities, speech, visemes, motion, rendering and clips."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from styletalker_core.data.synthetic import IDENTITY_DIM, IDENTITY_FACTORS, IdentityPool, SynthConfig, make_clip, render_faces, sample_identity
from styletalker_core.data.synthetic.motion import (
    BLINK_DURATION_RANGE,
    POSE_LIMITS,
    head_pose,
    loudness_envelope,
    sample_blinks,
)
from styletalker_core.data.synthetic.speech import Voice, sample_sentence, sentence_split, synthesize
from styletalker_core.data.synthetic.visemes import PHONEMES, mouth_track, phoneme_id, viseme_of


@pytest.fixture(scope="module")
def clips():
    config = SynthConfig(clips=6, seed=11, seconds=(2.0, 2.5), heldout_fraction=0.34)
    return config, [make_clip(config, index) for index in range(config.clips)]


def test_identity_draws_are_deterministic_and_in_range():
    a, b = sample_identity(3, 7), sample_identity(3, 7)
    assert a.shape == (IDENTITY_DIM,) and IDENTITY_DIM >= 8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, sample_identity(3, 8))
    assert np.all((a >= 0) & (a <= 1))


def test_heldout_identities_are_disjoint_from_training_ones():
    pool = IdentityPool(seed=5, num_train=40, num_heldout=8)
    assert set(pool.train_ids()).isdisjoint(pool.heldout_ids())
    train = pool.train_vectors()
    for number in pool.heldout_ids():
        distance = np.linalg.norm(train - pool.vector(number), axis=1).min()
        assert distance >= pool.min_distance


def test_sentences_of_the_two_splits_never_coincide():
    rng = np.random.default_rng(0)
    train = {sample_sentence(rng, 2, "train", 0.2) for _ in range(300)}
    heldout = {sample_sentence(rng, 2, "heldout", 0.2) for _ in range(300)}
    assert train.isdisjoint(heldout)
    assert all(sentence_split(text, 0.2) == "heldout" for text in heldout)


def test_espeak_gives_audio_and_ordered_phoneme_times():
    utterance = synthesize("my map", Voice("en-us+m3", 160, 50, 50))
    np.testing.assert_array_equal(synthesize("my map", Voice("en-us+m3", 160, 50, 50)).samples, utterance.samples)
    assert utterance.duration > 0.3 and np.abs(utterance.samples).max() > 1000
    names = [name for name, _, _ in utterance.phonemes]
    assert "m" in names and "p" in names
    starts = [start for _, start, _ in utterance.phonemes]
    assert starts == sorted(starts)
    assert all(end > start for _, start, end in utterance.phonemes)
    assert utterance.phonemes[-1][2] <= utterance.duration + 1e-3


def test_visemes_close_lips_on_bilabials_and_open_on_vowels():
    assert viseme_of("'aI") == "open" and viseme_of("m") == "bilabial" and viseme_of("_:") == "rest"
    assert phoneme_id("_") == 0 and PHONEMES[phoneme_id("'aI")] == "aI" and phoneme_id("zz") == 1
    phonemes = [("m", 0.50, 0.60), ("a", 0.60, 0.90), ("p", 0.90, 1.00)]
    times = np.arange(0, 1.5, 0.001)
    openness, _ = mouth_track(phonemes, times)
    assert openness[np.searchsorted(times, 0.55)] < 0.15 and openness[np.searchsorted(times, 0.75)] > 0.85
    # The opening crosses half way within one frame (40 ms) of the vowel onset.
    crossing = times[np.argmax(openness > 0.5)]
    assert abs(crossing - 0.60) < 0.04


def test_blink_statistics_are_in_range():
    rates, durations, gaps = [], [], []
    for seed in range(150):
        blinks = sample_blinks(np.random.default_rng(seed), 60.0)
        rates.append(len(blinks.onsets))
        durations += list(blinks.durations)
        gaps += list(np.diff(blinks.onsets))
    assert 10 <= np.mean(rates) <= 30
    assert BLINK_DURATION_RANGE[0] <= min(durations) and max(durations) <= BLINK_DURATION_RANGE[1]
    assert min(gaps) >= 0.5
    blinks = sample_blinks(np.random.default_rng(1), 60.0)
    eye = blinks.openness((np.arange(1500) + 0.5) / 25)
    assert eye.min() < 0.5 and eye.max() == 1.0
    # Every blink shows as at least one frame with the eyes more closed than open.
    closed = eye < 0.5
    runs = np.sum(np.diff(np.concatenate([[0], closed.astype(int)])) == 1)
    assert runs == len(blinks.onsets)


def test_head_motion_is_smooth_bounded_and_livelier_when_loud():
    quiet = [head_pose(np.random.default_rng(s), np.zeros(250)) for s in range(20)]
    loud = [head_pose(np.random.default_rng(s), np.ones(250)) for s in range(20)]
    speed = lambda poses: np.mean([np.abs(np.diff(p, axis=0)).mean() for p in poses])  # noqa: E731
    assert speed(loud) > 2 * speed(quiet)
    assert all(np.all(np.abs(p) < POSE_LIMITS) for p in loud)
    # Smooth: frame-to-frame steps are small against the range.
    assert max(np.abs(np.diff(p, axis=0)).max() for p in loud) < 6.0


def test_loudness_envelope_follows_the_audio():
    audio = np.zeros(16000, np.float32)
    audio[6400:9600] = 0.3 * np.sin(np.arange(3200) * 0.2)
    level = loudness_envelope(audio, 25)
    assert level[:10].max() == 0 and level[11:14].min() > 0.5


def test_renderer_output_and_factors_change_the_picture():
    identity = torch.full((IDENTITY_DIM,), 0.5)
    factors = list(IDENTITY_FACTORS)
    identity[factors.index("background_lightness")] = 1.0  # light background and hair: only features are dark
    identity[factors.index("hair_lightness")] = 1.0
    neutral = dict(pose=torch.zeros(1, 3), eye_open=torch.ones(1), mouth_open=torch.zeros(1), mouth_width=torch.full((1,), 0.5))

    def render(**changes):
        args = {**neutral, **changes}
        return render_faces(identity, args["pose"], args["eye_open"], args["mouth_open"], args["mouth_width"])[0]

    base = render()
    assert base.shape == (3, 64, 64) and base.min() >= 0 and base.max() <= 1
    torch.testing.assert_close(base, render())  # deterministic
    # Mouth region (rows 40-54): opening the mouth darkens it (inner mouth).
    mouth = lambda img: img[:, 40:54, 22:42].mean()  # noqa: E731
    assert mouth(render(mouth_open=torch.ones(1))) < mouth(base) - 0.02
    # Eye region (rows 24-34): closing the eyes removes the white sclera.
    eyes = lambda img: (img[:, 24:34].min(0).values > 0.85).sum()  # noqa: E731
    assert eyes(render(eye_open=torch.zeros(1))) < eyes(base)
    # Yaw moves the eyes sideways (located as what a blink changes); pitch moves them up and down.
    def eye_centre(pose):
        change = (render(pose=pose) - render(pose=pose, eye_open=torch.zeros(1))).abs().sum(0)
        rows, cols = torch.arange(64.0)[:, None], torch.arange(64.0)[None]
        return float((change * cols).sum() / change.sum()), float((change * rows).sum() / change.sum())
    x0, y0 = eye_centre(torch.zeros(1, 3))
    assert eye_centre(torch.tensor([[25.0, 0, 0]]))[0] > x0 + 3
    assert eye_centre(torch.tensor([[-25.0, 0, 0]]))[0] < x0 - 3
    assert eye_centre(torch.tensor([[0, 15.0, 0]]))[1] < y0 - 1.5
    # Anti-aliased: edges have intermediate values, no isolated single-pixel noise.
    values = torch.unique((base * 255).round())
    assert len(values) > 100


def test_clips_are_deterministic_by_seed(clips):
    config, made = clips
    again = make_clip(config, 2)
    np.testing.assert_array_equal(again.frames, made[2].frames)
    np.testing.assert_array_equal(again.audio, made[2].audio)
    for name, label in made[2].labels.items():
        np.testing.assert_array_equal(again.labels[name], label)
    assert again.meta == made[2].meta
    other = make_clip(SynthConfig(clips=6, seed=12, seconds=(2.0, 2.5), heldout_fraction=0.34), 2)
    assert other.meta["transcript"] != made[2].meta["transcript"] or not np.array_equal(other.frames, made[2].frames)


def test_clip_labels_audio_and_frames_are_aligned(clips):
    _, made = clips
    checked = []
    for clip in made:
        t = len(clip.frames)
        assert clip.audio.shape == (t * 640,)
        assert clip.labels["pose"].shape == (t, 3) and clip.labels["identity"].shape == (t, IDENTITY_DIM)
        for name in ("eye_open", "mouth_open", "mouth_width", "phoneme"):
            assert clip.labels[name].shape == (t,)
        phonemes = clip.meta["phonemes"]
        # Audio starts where the first phoneme event says (within one frame).
        energy = np.sqrt(np.convolve(clip.audio**2, np.ones(160) / 160, mode="same"))
        onset = np.argmax(energy > 0.02 * energy.max()) / 16000
        assert abs(onset - phonemes[0][1]) < 0.04
        # The phoneme label of each frame is the phoneme sounding at its centre.
        for name, start, end in phonemes:
            frame = int(((start + end) / 2) * 25)
            if (frame + 0.5) / 25 >= start and (frame + 0.5) / 25 < end:
                assert clip.labels["phoneme"][frame] == phoneme_id(name)
        # The mouth opens for an open vowel after a closed consonant within one frame (40 ms) of the
        # vowel's phoneme onset: the half-way crossing, interpolated between frame centres.
        mouth = clip.labels["mouth_open"]
        centres = (np.arange(t) + 0.5) / 25
        for (prev, _, _), (name, start, end) in itertools.pairwise(phonemes):
            if viseme_of(prev) == "bilabial" and viseme_of(name) == "open" and end - start > 0.1:
                frame = int(start * 25)
                half = (mouth[frame - 2] + mouth[frame + 2]) / 2
                after = frame - 2 + int(np.argmax(mouth[frame - 2:] > half))
                fraction = (half - mouth[after - 1]) / (mouth[after] - mouth[after - 1])
                crossing = centres[after - 1] + fraction / 25
                assert abs(crossing - start) < 0.04
                checked.append(name)
        # The rendered mouth follows the mouth label: inner-mouth darkness tracks openness.
        darkness = -clip.frames[:, 40:56, 22:42].astype(np.float32).mean(axis=(1, 2, 3))
        if mouth.std() > 0.1:
            assert np.corrcoef(darkness, mouth)[0, 1] > 0.6
    assert checked, "no bilabial + open vowel pair in the test clips; pick another seed"


def test_splits_use_disjoint_identities_and_sentences(clips):
    config, made = clips
    splits = [clip.meta["split"] for clip in made]
    assert splits.count("heldout") == config.num_heldout_clips() == 2
    train_ids = {c.meta["identity_id"] for c in made if c.meta["split"] == "train"}
    heldout_ids = {c.meta["identity_id"] for c in made if c.meta["split"] == "heldout"}
    assert train_ids and heldout_ids and train_ids.isdisjoint(heldout_ids)
    assert heldout_ids <= set(config.identity_pool().heldout_ids())
    for clip in made:
        assert sentence_split(clip.meta["transcript"], config.heldout_fraction) == clip.meta["split"]
