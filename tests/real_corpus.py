"""A corpus of real-pixel talking-face videos, built at test time from photos that ship inside
installed packages: scikit-image's astronaut (Eileen Collins, NASA) and matplotlib's Grace
Hopper sample. Nothing is downloaded.

Each video animates one photo with smooth warps: head pose as an affine map (roll, zoom,
translation, a little horizontal squeeze for yaw, all slow sinusoids with per-video phases), and
the mouth region (found by dlib's landmarks on the photo) opened with the speech's loudness
envelope: the lower lip and chin are pushed down and the gap between the lips darkened. The
speech is eSpeak NG (the project's espeakng-loader), a different sentence and voice per video.
Frames are written as H.264 mp4 with an AAC track (PyAV), 25 fps, 16 kHz.

Use :func:`build_real_corpus` (cached in a folder per session) or the ``real_corpus`` fixture
(import it into a test module: ``from real_corpus import real_corpus  # noqa: F401``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import attrs
import numpy as np
import pytest
import torch

FPS = 25
SAMPLE_RATE = 16000
SIZE = 256  # frame side in pixels
VERSION = 1  # bump when the corpus changes (the cache folder is keyed by it)

SENTENCES = (
    "the quick brown fox jumps over the lazy dog",
    "we talked about the weather all morning long",
    "please open the window before the meeting starts",
    "a bright yellow boat sailed across the calm lake",
    "my sister reads a new book every single week",
    "the old clock in the hall stopped at midnight",
    "they planted seven apple trees behind the house",
    "nobody expected the concert to end so early",
)
VOICES = ("en-us+m3", "en-us+f2", "en+m2", "en+f3", "en-us+m7", "en-us+f4", "en+m4", "en+f5")


@attrs.frozen
class Photo:
    """A face photo: uint8 [h, w, 3] and its 68 landmarks [68, 2] (pixels)."""

    name: str
    image: np.ndarray
    landmarks: np.ndarray


@attrs.frozen
class RealCorpus:
    """The corpus folder (flat: one mp4 per video), its videos, the photos they animate, and the
    videos' length in seconds."""

    folder: Path
    videos: list[Path]
    photos: dict[str, Photo]
    seconds: float

    @property
    def frames(self) -> int:
        """Frames of each video (at :data:`FPS`)."""
        return round(self.seconds * FPS)

    def video_of(self, photo: str) -> Path:
        return next(path for path in self.videos if path.stem.startswith(photo))


def photos() -> dict[str, Photo]:
    """The shipped face photos that dlib finds a face in, with their landmarks."""
    from matplotlib import cbook
    from PIL import Image
    from skimage import data

    from styletalker_core.data.preprocess import FaceAnalyzer

    images = {"astronaut": data.astronaut()}
    try:
        with cbook.get_sample_data("grace_hopper.jpg") as handle:
            images["hopper"] = np.asarray(Image.open(handle).convert("RGB"))
    except (OSError, ValueError):  # pragma: no cover - matplotlib without its sample data
        pass
    analyzer = FaceAnalyzer()
    found = {}
    for name, image in images.items():
        faces = analyzer.faces(image)
        if faces:
            found[name] = Photo(name, image, max(faces, key=lambda face: face.score).landmarks)
    return found


def speech(text: str, voice: str, seconds: float) -> np.ndarray:
    """eSpeak NG speech of ``text`` as float32 [seconds * 16000] (quiet lead, then the sentence, cut or padded)."""
    import torchaudio.functional as AF

    from styletalker_core.data.synthetic.speech import ESPEAK_SAMPLE_RATE, Voice, synthesize

    utterance = synthesize(text, Voice(voice, 160, 50, 50))
    wave = torch.from_numpy(utterance.samples.astype(np.float32) / 32768.0)
    wave = AF.resample(wave, ESPEAK_SAMPLE_RATE, SAMPLE_RATE).numpy()
    wave = 0.7 * wave / max(float(np.abs(wave).max()), 1e-6)
    out = np.zeros(round(seconds * SAMPLE_RATE), np.float32)
    lead = round(0.25 * SAMPLE_RATE)
    piece = wave[: len(out) - lead]
    out[lead : lead + len(piece)] = piece
    return out


def envelope(audio: np.ndarray, frames: int) -> np.ndarray:
    """Loudness per video frame in [0, 1]: RMS over each frame's 640 samples, smoothed, normalised."""
    per = SAMPLE_RATE // FPS
    padded = np.pad(audio, (0, max(0, frames * per - len(audio))))[: frames * per]
    rms = np.sqrt((padded.reshape(frames, per) ** 2).mean(axis=1))
    kernel = np.array([0.25, 0.5, 0.25])
    rms = np.convolve(np.pad(rms, 1, mode="edge"), kernel, mode="valid")
    return np.clip(rms / max(float(rms.max()), 1e-6), 0.0, 1.0)


def animate(photo: Photo, loudness: np.ndarray, seed: int, size: int = SIZE) -> np.ndarray:
    """Frames uint8 [t, size, size, 3] of ``photo`` moving and speaking with ``loudness`` [t]."""
    rng = np.random.default_rng(seed)
    frames = len(loudness)
    points = photo.landmarks
    eyes = (points[36:42].mean(0) + points[42:48].mean(0)) / 2
    mouth = points[48:68].mean(0)
    centre = (eyes + mouth) / 2
    face = float(np.hypot(*(points[16] - points[0])))  # jaw width
    side = 2.4 * face  # photo pixels the frame shows
    mouth_width = float(np.hypot(*(points[54] - points[48])))
    lip_gap = float(np.hypot(*(points[57] - points[51])))  # upper to lower lip, closed
    t = np.arange(frames) / FPS
    phase = rng.uniform(0, 2 * np.pi, 5)
    roll = np.deg2rad(6.0) * np.sin(2 * np.pi * 0.31 * t + phase[0])
    zoom = 1.0 + 0.05 * np.sin(2 * np.pi * 0.23 * t + phase[1])
    shift_x = 0.04 * side * np.sin(2 * np.pi * 0.17 * t + phase[2])
    shift_y = 0.03 * side * np.sin(2 * np.pi * 0.29 * t + phase[3])
    yaw = 1.0 - 0.06 * (0.5 + 0.5 * np.sin(2 * np.pi * 0.2 * t + phase[4]))  # horizontal squeeze

    image = torch.from_numpy(np.array(photo.image)).permute(2, 0, 1).float()[None]  # [1, 3, h, w]
    height, width = photo.image.shape[:2]
    grid_v, grid_u = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64), indexing="ij")
    u, v = (grid_u - (size - 1) / 2) / size, (grid_v - (size - 1) / 2) / size  # frame coordinates in [-0.5, 0.5]
    out = np.empty((frames, size, size, 3), np.uint8)
    open_max = 0.9 * mouth_width  # how far the lower lip drops at full loudness
    for index in range(frames):
        cos, sin = math.cos(roll[index]), math.sin(roll[index])
        scale = side / zoom[index]
        x = scale * (cos * u * yaw[index] - sin * v) + centre[0] + shift_x[index]
        y = scale * (sin * u * yaw[index] + cos * v) + centre[1] + shift_y[index]
        # the mouth: below the lip line, pull the source up (the lower lip and chin move down)
        opening = open_max * 0.5 * float(loudness[index])
        dx, dy = (x - mouth[0]) / (0.9 * mouth_width), (y - mouth[1]) / (1.6 * mouth_width)
        below = torch.clamp((y - mouth[1]) / (0.5 * lip_gap + 1.0) + 1.0, 0.0, 1.0)  # 0 above the lip line
        weight = torch.exp(-(dx**2 + dy**2) * 2.0) * below
        y = y - opening * weight
        grid = torch.stack([x / (width - 1) * 2 - 1, y / (height - 1) * 2 - 1], dim=-1)[None].float()
        frame = torch.nn.functional.grid_sample(image, grid, mode="bilinear", padding_mode="reflection", align_corners=True)[0]
        # the gap between the lips darkens with the opening
        gap = torch.exp(-((x - mouth[0]) / (0.55 * mouth_width)) ** 2 - ((y - mouth[1]) / (0.5 * lip_gap + 0.3 * opening + 1.0)) ** 2)
        dark = (0.85 * float(loudness[index]) * gap).float()
        frame = frame * (1 - dark) + 25.0 * dark
        out[index] = frame.permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    return out


def build_real_corpus(folder: str | Path, videos_per_photo: int = 3, seconds: float = 2.0) -> RealCorpus:
    """Write the corpus into ``folder`` (flat: ``<photo>_<n>.mp4``) unless it is there already; returns it."""
    from styletalker_core.media import write_video

    folder = Path(folder)
    found = photos()
    if not found:  # pragma: no cover
        pytest.skip("no face photo ships with the installed packages")
    marker = folder / ".corpus.json"
    names = [f"{name}_{take}" for name in found for take in range(videos_per_photo)]
    expected = {"version": VERSION, "videos": names, "seconds": seconds}
    if not (marker.is_file() and json.loads(marker.read_text()) == expected):
        folder.mkdir(parents=True, exist_ok=True)
        with torch.random.fork_rng(devices=[]):
            for number, name in enumerate(names):
                photo = found[name.rsplit("_", 1)[0]]
                audio = speech(SENTENCES[number % len(SENTENCES)], VOICES[number % len(VOICES)], seconds)
                frames = animate(photo, envelope(audio, round(seconds * FPS)), seed=number)
                write_video(folder / f"{name}.mp4", frames, audio, fps=FPS, preset="ultrafast")
        marker.write_text(json.dumps(expected))
    return RealCorpus(folder, [folder / f"{name}.mp4" for name in names], found, seconds)


@pytest.fixture(scope="session")
def real_corpus(tmp_path_factory: pytest.TempPathFactory) -> RealCorpus:
    """Six 2 s videos (two photos, three takes each) in one flat folder, built once per session. 2 s
    holds several 12-frame training windows and a sentence's start; every frame costs a dlib detection
    in preprocess, so longer videos only make the tests slower."""
    return build_real_corpus(tmp_path_factory.getbasetemp() / "real_corpus")
