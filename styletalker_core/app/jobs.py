"""The app's file workflow: uploads -> one sampling job in its own folder -> mp4 files.

Rules: every file the app writes is inside its work folder (uploads, job folders, Gradio's
cache); a job's inputs are deleted when it ends and its results after ``keep_minutes``; the
audio and the motion video are capped in length and every input is checked by decoding its
content (the extension proves nothing), with the same readers and so the same one-line
messages as ``styletalker sample``, the job folder left out of the names.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
import uuid
from pathlib import Path

import attrs

from styletalker_core.errors import StyleTalkerError

MODES = ("audio-driven", "motion-controllable")


@attrs.define
class AppConfig:
    """Limits and places of one app server."""

    work_dir: Path = attrs.field(converter=Path)
    max_upload_mb: float = 50.0
    max_audio_seconds: float = 60.0
    max_motion_seconds: float = 60.0
    max_live_seconds: float = 300.0
    max_live_sessions: int = 2
    max_samples: int = 4
    keep_minutes: float = 60.0
    device: str = "cpu"

    @property
    def jobs_dir(self) -> Path:
        return self.work_dir / "jobs"

    @property
    def cache_dir(self) -> Path:
        return self.work_dir / "gradio"


def safe_name(name: str, fallback: str) -> str:
    """A file name without folders or odd characters (kept readable for messages)."""
    base = Path(str(name)).name
    base = re.sub(r"[^A-Za-z0-9._ -]", "_", base).strip(" .")[:120]
    return base or fallback


class Models:
    """Talking-head models the app offers, loaded once each (a lock: one load at a time)."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._loaded: dict[Path, object] = {}
        self._lock = threading.Lock()

    @staticmethod
    def choices() -> list[str]:
        """Model files: the shipped one first, then checkpoints/*.safetensors and runs/*/model.safetensors
        that hold a whole talking-head model (read from their headers)."""
        from styletalker_core.checkpoint import read_metadata
        from styletalker_core.model.talking_head import ROLES
        from styletalker_core.sample.shipped import default_model, project_root

        root = project_root()
        found: list[Path] = []
        candidates = [default_model(), *sorted((root / "checkpoints").glob("*.safetensors")),
                      *sorted((root / "runs").glob("*/model.safetensors"))]
        for path in candidates:
            if path in found or not path.is_file():
                continue
            try:
                components = read_metadata(path).get("components", {})
            except Exception:  # noqa: BLE001 - a file that is not a model is simply not offered
                continue
            if all(role in components for role in ROLES):
                found.append(path)
        return [str(path.relative_to(root)) if path.is_relative_to(root) else str(path) for path in found]

    def get(self, name: str):  # noqa: ANN201 - a Sampler
        from styletalker_core.sample import Sampler
        from styletalker_core.sample.shipped import project_root

        if name not in self.choices():
            raise StyleTalkerError(f"model {name}: not one of the models this app offers")
        path = (project_root() / name).resolve()
        with self._lock:
            if path not in self._loaded:
                self._loaded[path] = Sampler.from_checkpoint(path, device=self.device)
            return self._loaded[path]


class JobFolder:
    """A fresh folder under the work folder for one generation; its inputs go when the job ends."""

    def __init__(self, config: AppConfig) -> None:
        config.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.path = config.jobs_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self.path.mkdir()
        self.inputs: list[Path] = []

    def take(self, upload: str | None, role: str, fallback: str) -> Path | None:
        """Copy an upload (a path Gradio gives) in under its own name; None when not given."""
        if not upload:
            return None
        source = Path(upload)
        name = safe_name(source.name, fallback)
        if any(existing.name == name for existing in self.inputs):
            name = f"{role}_{name}"
        target = self.path / name
        shutil.copyfile(source, target)
        self.inputs.append(target)
        return target

    def message(self, error: BaseException) -> str:
        """The error's one line, with the job folder left out of file names (as the CLI prints it)."""
        from styletalker_core.errors import one_line

        text = one_line(str(error)).replace(f"{self.path}/", "").replace(str(self.path), ".")
        return f"styletalker: error: {text}"

    def drop_inputs(self) -> None:
        for path in self.inputs:
            path.unlink(missing_ok=True)


def remove_old_jobs(config: AppConfig) -> None:
    """Delete job folders older than ``keep_minutes``."""
    if not config.jobs_dir.is_dir():
        return
    limit = time.time() - 60 * config.keep_minutes
    for folder in config.jobs_dir.iterdir():
        try:
            if folder.is_dir() and folder.stat().st_mtime < limit:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


def check_motion_length(path: Path, config: AppConfig) -> None:
    from styletalker_core.media import MediaError, probe_video
    from styletalker_core.sample.faces import media_error

    try:
        info = probe_video(path)
    except MediaError as error:
        raise media_error("motion", error) from None
    seconds = getattr(info, "duration", None)
    if seconds is not None and seconds > config.max_motion_seconds:
        raise StyleTalkerError(f"motion: {path}: {seconds:.1f} s long; this app takes motion videos of at most "
                               f"{config.max_motion_seconds:.0f} s")


def run_job(config: AppConfig, models: Models, *, image: str | None, audio: str | None, motion: str | None,
            model: str, mode: str, seed: float, temperature: float, num_samples: float, pose_scale: float,
            still: bool, aligned: bool) -> tuple[list[Path], str]:
    """One generation: (the mp4 files, a status line). Errors come back as the CLI's one line."""
    from styletalker_core.media import write_audio
    from styletalker_core.sample import SampleJob

    remove_old_jobs(config)
    folder = JobFolder(config)
    try:
        if mode not in MODES:
            raise StyleTalkerError(f"mode {mode!r}: choose one of {', '.join(MODES)}")
        if not image:
            raise StyleTalkerError("reference: give a face image (or pick the shipped face)")
        if not audio:
            raise StyleTalkerError("audio: give speech: upload a file or record from the microphone")
        if mode == "motion-controllable" and not motion:
            raise StyleTalkerError("motion: the motion-controllable mode needs a motion video; upload one or "
                                   "choose the audio-driven mode")
        if int(num_samples) > config.max_samples:
            raise StyleTalkerError(f"--num-samples {int(num_samples)}: this app makes at most {config.max_samples}")
        reference = folder.take(image, "reference", "reference.png")
        speech = folder.take(audio, "audio", "speech.wav")
        driver = folder.take(motion, "motion", "motion.mp4") if mode == "motion-controllable" else None
        sampler = models.get(model)
        settings = sampler.settings(seed=int(seed), temperature=float(temperature), num_samples=int(num_samples),
                                    pose_scale=float(pose_scale), still=bool(still), align=not aligned)
        wave = sampler.read_speech(speech)  # decodes the content: the CLI's message for a bad file
        seconds = len(wave) / sampler.head.sample_rate
        if seconds > config.max_audio_seconds:
            raise StyleTalkerError(f"audio: {speech}: {seconds:.1f} s long; this app takes at most "
                                   f"{config.max_audio_seconds:.0f} s of speech")
        decoded = folder.path / ".speech16k.wav"
        write_audio(decoded, wave, sampler.head.sample_rate)
        folder.inputs.append(decoded)
        if driver is not None:
            check_motion_length(driver, config)
        assert reference is not None  # an image was given (checked above)
        job = SampleJob(reference, decoded, folder.path / "talk.mp4", driver, settings)
        result = sampler.run(job, progress=True)
        status = (f"{result.num_frames} frames ({result.num_frames / sampler.head.fps:.2f} s) in {result.seconds:.1f} s"
                  + ("" if result.in_domain else f"; warning: the reference is outside the model's domain "
                     f"(reconstruction {result.reference_psnr:.1f} dB): identity will not be preserved"))
        return list(result.outputs), status
    except StyleTalkerError as error:
        return [], folder.message(error)
    except OSError as error:
        return [], folder.message(StyleTalkerError(f"{error.filename or 'a file'}: {error.strerror or error}"))
    finally:
        folder.drop_inputs()
