"""The sampling engine: a model file, a reference face, speech (and a motion video) -> mp4 files.

Following one job: the first chunk of the audio is read (a :class:`SpeechReader`: 16 kHz
mono, decoded as generation needs it); the reference is aligned (or resized), encoded, and
checked for being in the model's domain; a motion video, when given, is read at 25 fps,
aligned and encoded to motion codes; then :meth:`TalkingHead.stream_latents` pulls the
speech chunk by chunk and yields W+ latents chunk by chunk, the generator renders each
chunk in batches, and every chunk goes straight into the streaming mp4 writers with the
audio under it. Only one chunk of speech, features and frames is held at a time, so memory
does not grow with the length of the audio; the frames equal those of one pass over the
whole recording. A bad sample found late in the file (NaN, a decoding error) stops the job
with nothing written at the output path (the writers' temporaries are removed).
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import attrs
import numpy as np
import torch

from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces.image_encoder import OutOfDomainWarning
from styletalker_core.media import MediaError, NoAudioTrackError, read_audio
from styletalker_core.model import TalkingHead
from styletalker_core.registry import Registries
from styletalker_core.sample.faces import (
    FaceAligner,
    InputError,
    check_motion_name,
    is_video,
    media_error,
    prepare_motion_frames,
    prepare_reference_picture,
    prepare_reference_video,
    to_tensor,
    to_uint8,
)
from styletalker_core.sample.outputs import VideoSet, check_outputs, output_paths
from styletalker_core.sample.paste_back import Backdrop
from styletalker_core.sample.settings import SampleSettings, settings_from_recipe
from styletalker_core.sample.speech import MIN_AUDIO_SECONDS, SpeechReader

LOG = logging.getLogger(__name__)
STAGES = ("audio", "reference", "motion", "latents", "generator", "writing")


@attrs.frozen
class SampleJob:
    """One video to make: reference image, speech, optional motion video, output path, settings."""

    image: Path = attrs.field(converter=Path)
    audio: Path = attrs.field(converter=Path)
    out: Path = attrs.field(converter=Path)
    motion: Path | None = attrs.field(default=None, converter=attrs.converters.optional(Path))
    settings: SampleSettings = attrs.field(factory=SampleSettings)

    def inputs(self) -> list[Path]:
        return [self.image, self.audio] + ([self.motion] if self.motion is not None else [])


@attrs.define
class SampleResult:
    """What a job wrote: files, frames per file, wall time, seconds per stage (:data:`STAGES`),
    and the reference's reconstruction PSNR (dB) with the out-of-domain verdict."""

    outputs: list[Path]
    num_frames: int
    seconds: float
    timings: dict[str, float]
    reference_psnr: float
    in_domain: bool

    @property
    def frames_per_second(self) -> float:
        """Frames generated per second of wall time (all samples counted)."""
        return self.num_frames * len(self.outputs) / self.seconds if self.seconds > 0 else float("inf")


@attrs.frozen
class Reference:
    """A loaded reference: the aligned face uint8 [s, s, 3]; for an image the picture uint8 [h, w, 3]
    and its crop transform ``affines`` [1, 2, 3]; for a video (picture None) the landmark ``track``
    [t, 68, 2] (None without alignment) and its frame ``count``."""

    face: np.ndarray
    picture: np.ndarray | None = None
    affines: np.ndarray | None = None
    track: np.ndarray | None = None
    count: int = 1


class Stopwatch:
    """Accumulates wall time per named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def time(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start


def check_job(job: SampleJob, overwrite: bool = False) -> None:
    """Problems visible before any file is read: conflicting options, missing inputs, existing outputs."""
    settings = job.settings
    if job.motion is not None and settings.still:
        raise StyleTalkerError("--still has no head motion, so a motion video has nothing to drive; drop one of them")
    if job.motion is not None and settings.num_samples > 1:
        raise StyleTalkerError("several samples need the audio-driven mode (a motion video gives one motion); "
                               "drop the motion video or use --num-samples 1")
    for role, path in (("reference", job.image), ("audio", job.audio), ("motion", job.motion)):
        if path is not None and path.is_dir():
            raise InputError(f"{role}: {path}: is a folder, not a file; give the path of one file")
        if path is not None and not path.is_file():
            raise InputError(f"{role}: {path}: no such file; check the path")
    if job.motion is not None:
        check_motion_name(job.motion)
    check_outputs(output_paths(job.out, settings.num_samples), overwrite, job.inputs())


class Sampler:
    """Generates videos with one loaded model; reuse it for many jobs (batch mode)."""

    def __init__(self, head: TalkingHead, defaults: SampleSettings | None = None) -> None:
        self.head = head.eval()
        self.defaults = defaults or SampleSettings()
        self.aligner = FaceAligner()

    @classmethod
    def from_checkpoint(cls, path: str | Path, registries: Registries | None = None,
                        device: str | torch.device = "cpu") -> Sampler:
        """Load a model file (a run's model.safetensors or a shipped checkpoint); its recipe's
        ``[sample]`` table gives the default settings."""
        from styletalker_core.checkpoint import read_metadata

        path = Path(path)
        if path.is_dir():
            path = path / "model.safetensors"
        if not path.is_file():
            raise StyleTalkerError(f"checkpoint {path}: no such file; give a model file (a run's model.safetensors) "
                                   "or a run folder with --checkpoint")
        defaults = settings_from_recipe(read_metadata(path).get("recipe"))
        return cls(TalkingHead.from_checkpoint(path, registries, device=device), defaults)

    # -- inputs ----------------------------------------------------------------------------
    def read_speech(self, path: Path) -> np.ndarray:
        """Mono float32 [s] at the model's sample rate; refuses audio shorter than MIN_AUDIO_SECONDS."""
        try:
            wave = read_audio(path, self.head.sample_rate)
        except MediaError as error:
            raise media_error("audio", error) from None
        seconds = len(wave) / self.head.sample_rate
        if seconds < MIN_AUDIO_SECONDS:
            raise InputError(f"audio: {path}: only {seconds:.2f} s long; give at least {MIN_AUDIO_SECONDS} s of speech")
        return wave

    def load_reference(self, path: Path, align: bool, reference_frame: int = 0) -> Reference:
        """The reference (an image, or a video whose frame ``reference_frame`` is the identity):
        its aligned face and what paste-back needs."""
        size = self.head.image_encoder.resolution
        if is_video(path):
            face, track, count = prepare_reference_video(path, size, align, self.aligner, self.head.fps, reference_frame)
            return Reference(face, track=track, count=count)
        if reference_frame:
            raise InputError(f"reference: {path}: --reference-frame {reference_frame} needs a video reference, "
                             "not a still image")
        face, picture, affine = prepare_reference_picture(path, size, align, self.aligner)
        return Reference(face, picture, affine[None])

    def encode_reference(self, path: Path, align: bool, reference_frame: int = 0) -> tuple[torch.Tensor, float, bool]:
        """Reference image (or video frame) -> (w_id [1, l, w], reconstruction PSNR in dB, in domain).

        The image encoder's out-of-domain check runs on every reference; its warning is
        re-issued naming the file.
        """
        return self.check_reference(self.load_reference(path, align, reference_frame).face, path)

    def check_reference(self, face: np.ndarray, path: Path) -> tuple[torch.Tensor, float, bool]:
        """An aligned reference face uint8 [s, s, 3] -> (w_id, PSNR, in domain), as :meth:`encode_reference`."""
        encoder = self.head.image_encoder
        image = to_tensor(face)[None].to(self.head.device)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", OutOfDomainWarning)
            check = encoder.check_reference(image, self.head.generator)
        for warning in caught:
            if issubclass(warning.category, OutOfDomainWarning):
                warnings.warn(f"reference {path}: {warning.message}", OutOfDomainWarning, stacklevel=3)
            else:
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        return check.ws, float(check.psnr[0]), bool(check.in_domain.all())

    def encode_motion_video(self, path: Path, align: bool, batch_size: int, track: np.ndarray | None = None) -> torch.Tensor:
        """Motion video -> motion codes z [t, z] (posterior means), with its own audio when it has some
        (``track``: the video's landmarks when already found)."""
        head = self.head
        frames = prepare_motion_frames(path, head.image_encoder.resolution, align, self.aligner, head.fps, track)
        try:
            audio = torch.from_numpy(read_audio(path, head.sample_rate))
        except NoAudioTrackError:
            audio = None
        except MediaError as error:
            LOG.warning("motion video %s: its audio cannot be read (%s); encoding its motion without audio", path, error)
            audio = None
        if audio is not None and audio.numel() == 0:
            audio = None
        return head.encode_motion(to_tensor(frames), audio, batch_size=batch_size)

    # -- generation ------------------------------------------------------------------------
    def run(self, job: SampleJob, overwrite: bool = False, progress: bool = False,
            stopwatch: Stopwatch | None = None) -> SampleResult:
        """Make the job's video(s); returns what was written. Nothing is written on failure."""
        start = time.perf_counter()
        watch = stopwatch or Stopwatch()
        settings, head = job.settings, self.head
        check_job(job, overwrite)
        paths = output_paths(job.out, settings.num_samples)
        with contextlib.closing(SpeechReader(job.audio, head.sample_rate)) as speech:
            speech.open()  # a short recording or a damaged start fails before anything else is read
            with watch.time("reference"):
                reference = self.load_reference(job.image, settings.align, settings.reference_frame)
                w_id, psnr, in_domain = self.check_reference(reference.face, job.image)
            motion = None
            if job.motion is not None:
                with watch.time("motion"):
                    motion = self.encode_motion_video(job.motion, settings.align, settings.batch_size)
            elif reference.picture is None and not settings.still and settings.num_samples == 1:
                # a reference video drives the head motion and blinks, so the face fits each of its frames
                with watch.time("motion"):
                    motion = self.encode_motion_video(job.image, settings.align, settings.batch_size, reference.track)
            backdrop = self.backdrop(job.image, reference) if settings.paste_back else None
            try:
                written = self._write_videos(paths, settings, w_id, motion, speech, backdrop, watch,
                                             progress, job.out.name)
            finally:
                if backdrop is not None:
                    backdrop.close()
        return SampleResult(paths, written, time.perf_counter() - start, dict(watch.seconds), psnr, in_domain)

    def _write_videos(self, paths: list[Path], settings: SampleSettings, w_id: torch.Tensor,
                      motion: torch.Tensor | None, speech: SpeechReader, backdrop: Backdrop | None,
                      watch: Stopwatch, progress: bool, name: str) -> int:
        """Generate and write every chunk (the speech read as the chunks need it); returns the frames per file."""
        from tqdm import tqdm

        head = self.head
        generator = torch.Generator(device=head.device).manual_seed(settings.seed)
        latents = head.stream_latents(
            w_id, speech.chunks(), motion=motion, motion_fit=settings.motion_fit,
            temperature=settings.temperature, num_samples=settings.num_samples, generator=generator,
            pose_scale=settings.pose_scale, still=settings.still, chunk_frames=settings.chunk_frames,
        )
        estimate = speech.estimated_samples()  # the container's length: for the progress bar only
        total = None if estimate is None else head.num_frames(estimate, None if motion is None else len(motion),
                                                              settings.motion_fit)
        spf = head.samples_per_frame
        decoded_before = speech.seconds
        bar = tqdm(total=total, unit="frame", desc=name, disable=not progress, dynamic_ncols=True, leave=False)
        try:
            with VideoSet(paths, head.fps, head.sample_rate, settings.crf, settings.preset) as videos:
                while True:
                    with watch.time("latents"):  # decoding the speech these latents need happens in here
                        ws = next(latents, None)
                    if ws is None:
                        break
                    # rendered, converted and written a batch at a time: no frames of the whole chunk
                    # are held (a chunk of float frames is large enough to fragment the heap over a long run)
                    for begin in range(0, ws.shape[1], settings.batch_size):
                        with watch.time("generator"):
                            frames = head.render(ws[:, begin : begin + settings.batch_size], settings.batch_size)
                        with watch.time("writing"):
                            faces = to_uint8(frames)
                            if backdrop is not None:  # full-size frames
                                faces = backdrop.composite(faces, videos.num_frames)
                            videos.write(faces, speech.take(faces.shape[1] * spf))
                    bar.update(ws.shape[1])
                decoded_in_latents = speech.seconds - decoded_before
                speech.drain()  # the part of the file past the last frame is checked too
                written = videos.num_frames
        finally:
            bar.close()
        # report the decoding as the audio stage, not as part of the latents
        watch.seconds["latents"] = max(0.0, watch.seconds.get("latents", 0.0) - decoded_in_latents)
        watch.seconds["audio"] = watch.seconds.get("audio", 0.0) + speech.seconds
        return written

    def backdrop(self, path: Path, reference: Reference) -> Backdrop:
        """What ``--paste-back`` composites into: the reference image, or every frame of the reference
        video (decoded once to a temporary memory-mapped file), with their crop transforms."""
        from styletalker_core.sample.paste_back import Backdrop, FrameStore, crop_affine, square_affine

        size = self.head.image_encoder.resolution
        if reference.picture is not None:
            assert reference.affines is not None  # an image reference has both
            return Backdrop(reference.picture, reference.affines)
        try:
            store = FrameStore(path, self.head.fps, reference.count)
        except MediaError as error:
            raise media_error("reference", error) from None
        if reference.track is not None:
            affines = np.stack([crop_affine(points, size) for points in reference.track[: len(store)]])
        else:
            height, width = store[0].shape[:2]
            affines = square_affine(height, width, size)[None]
        return Backdrop(store, affines)

    def settings(self, **overrides: object) -> SampleSettings:
        """The model's default settings with ``overrides`` (None values ignored)."""
        from styletalker_core.sample.settings import with_overrides

        return with_overrides(self.defaults, overrides)
