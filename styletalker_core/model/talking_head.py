"""TalkingHead: the StyleTalker model assembled from components of each kind (interfaces only)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from styletalker_core.errors import StyleTalkerError
from styletalker_core.interfaces import AudioEncoder, Generator, ImageEncoder, LipMapper, MotionVAE, Prior
from styletalker_core.model.latents import compose, reparameterize
from styletalker_core.model.motion_fit import MotionFit, fit_motion_span, output_frames
from styletalker_core.model.wave_window import WaveWindow
from styletalker_core.registry import Registries

ROLES = ("generator", "image_encoder", "audio_encoder", "lip_mapper", "motion_vae", "prior")
UNBOUNDED_AUDIO_CONTEXT = 25  # frames of audio margin for encoders without a bounded receptive field


@attrs.define
class TrainingLatents:
    """What one training forward pass computes (b clips of t frames).

    ws [b, t, l, w] composed latents; dw_lip, dw_mot [b, t, l, w]; z, mean, log_var [b, t, z];
    features [b, t, c] audio features of the frames; future [b, k, c] features of the frames after them.
    """

    ws: torch.Tensor
    dw_lip: torch.Tensor
    dw_mot: torch.Tensor
    z: torch.Tensor
    mean: torch.Tensor
    log_var: torch.Tensor
    features: torch.Tensor
    future: torch.Tensor


class TalkingHead(nn.Module):
    """One reference image + speech -> talking-head frames (see :mod:`styletalker_core.model`)."""

    def __init__(
        self,
        generator: Generator,
        image_encoder: ImageEncoder,
        audio_encoder: AudioEncoder,
        lip_mapper: LipMapper,
        motion_vae: MotionVAE,
        prior: Prior,
    ) -> None:
        super().__init__()
        self.generator, self.image_encoder, self.audio_encoder = generator, image_encoder, audio_encoder
        self.lip_mapper, self.motion_vae, self.prior = lip_mapper, motion_vae, prior
        self._check_dimensions()

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_components(cls, components: Mapping[str, nn.Module]) -> TalkingHead:
        """From modules by role (:data:`ROLES`); extra roles (discriminators) are ignored."""
        missing = [role for role in ROLES if role not in components]
        if missing:
            raise StyleTalkerError(f"a talking-head model needs {', '.join(missing)}; the components given hold "
                                   f"{', '.join(components) or 'nothing'}")
        return cls(**{role: components[role] for role in ROLES})  # type: ignore[arg-type]  # each role was built as its kind

    @classmethod
    def from_checkpoint(cls, path: str | Path, registries: Registries | None = None,
                        device: str | torch.device = "cpu") -> TalkingHead:
        """From a model file (a run's model.safetensors, or a shipped checkpoint); eval mode."""
        from styletalker_core.checkpoint import load_checkpoint, read_metadata

        held = read_metadata(path)["components"]
        missing = [role for role in ROLES if role not in held]
        if missing:
            raise StyleTalkerError(f"{path}: not a talking-head model: it lacks {', '.join(missing)}; "
                                   "use a run's model.safetensors")
        checkpoint = load_checkpoint(path, registries, roles=list(ROLES), map_location=device)
        return cls.from_components(checkpoint.components).eval()

    def _check_dimensions(self) -> None:
        g, problems = self.generator, []
        for role in ("image_encoder", "lip_mapper", "motion_vae"):
            module = getattr(self, role)
            if (module.num_ws, module.w_dim) != (g.num_ws, g.w_dim):
                problems.append(f"{role} has W+ {module.num_ws}x{module.w_dim}, the generator {g.num_ws}x{g.w_dim}")
        for role in ("lip_mapper", "motion_vae", "prior"):
            if getattr(self, role).feature_dim != self.audio_encoder.feature_dim:
                problems.append(f"{role} reads {getattr(self, role).feature_dim} audio channels, "
                                f"the audio encoder gives {self.audio_encoder.feature_dim}")
        if self.prior.z_dim != self.motion_vae.z_dim:
            problems.append(f"prior z_dim {self.prior.z_dim} differs from motion_vae z_dim {self.motion_vae.z_dim}")
        if problems:
            raise StyleTalkerError("components do not fit together: " + "; ".join(problems))

    # -- sizes ---------------------------------------------------------------------------
    @property
    def resolution(self) -> int:
        return self.generator.resolution

    @property
    def fps(self) -> int:
        return self.audio_encoder.fps

    @property
    def sample_rate(self) -> int:
        return self.audio_encoder.sample_rate

    @property
    def samples_per_frame(self) -> int:
        return self.audio_encoder.samples_per_frame

    @property
    def device(self) -> torch.device:
        return self.generator.w_avg.device

    def audio_frames(self, samples: int) -> int:
        """Video frames that cover ``samples`` audio samples (rounded up)."""
        return math.ceil(samples / self.samples_per_frame)

    def num_frames(self, audio_samples: int, motion_frames: int | None = None, motion_fit: MotionFit = "loop") -> int:
        """Frames generate/stream produce for this audio (and motion source)."""
        return output_frames(self.audio_frames(audio_samples), motion_frames, motion_fit)

    # -- encoders ------------------------------------------------------------------------
    def _to_encoder(self, images: torch.Tensor) -> torch.Tensor:
        size = self.image_encoder.resolution
        if images.shape[-2:] != (size, size):
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return images

    @torch.no_grad()
    def encode_frames(self, frames: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
        """Aligned faces [t, 3, h, w] in [-1, 1] -> W+ latents [t, l, w] (encoder in batches)."""
        chunks = [self.image_encoder.encode(self._to_encoder(chunk.to(self.device))) for chunk in frames.split(batch_size)]
        return torch.cat(chunks)

    def encode_identity(self, image: torch.Tensor) -> torch.Tensor:
        """Reference face [3, h, w] or [1, 3, h, w] in [-1, 1] -> w_id [1, l, w]."""
        image = image[None] if image.ndim == 3 else image
        return self.encode_frames(image)

    @torch.no_grad()
    def audio_features(self, wave: torch.Tensor, num_frames: int, chunk_frames: int = 250) -> torch.Tensor:
        """wave [s] or [b, s] -> features [b, num_frames, c], computed in chunks."""
        wave = wave[None] if wave.ndim == 1 else wave
        return self.audio_encoder.features_chunked(wave.to(self.device), num_frames, chunk_frames)

    @torch.no_grad()
    def encode_motion(self, frames: torch.Tensor, audio: torch.Tensor | None = None, reference_frame: int = 0,
                      batch_size: int = 16) -> torch.Tensor:
        """Motion source [t, 3, h, w] (aligned faces) and its audio [s] (None: no audio) -> z [t, z].

        The latents are taken relative to the source's own identity latent (its frame
        ``reference_frame``) and the posterior mean is returned.
        """
        ws = self.encode_frames(frames, batch_size)
        if not 0 <= reference_frame < len(ws):
            raise StyleTalkerError(f"motion source: reference frame {reference_frame} is outside its {len(ws)} frames")
        dw = (ws - ws[reference_frame])[None]
        if audio is None:
            features = torch.zeros(1, len(ws), self.audio_encoder.feature_dim, device=self.device)
        else:
            features = self.audio_features(audio, len(ws))
        mean, _ = self.motion_vae.posterior(dw, features)
        return mean[0]

    # -- training ------------------------------------------------------------------------
    def training_latents(self, ws: torch.Tensor, w_id: torch.Tensor, audio: torch.Tensor, context_frames: int,
                         sample: bool = True, posterior_audio: bool | torch.Tensor = True,
                         generator: torch.Generator | None = None, motion: bool = True) -> TrainingLatents:
        """The main stage's forward pass on latents.

        ws [b, t, l, w] latents of the ground-truth frames, w_id [b, l, w], audio [b, s] covering the
        t frames plus ``context_frames`` frames on each side. ``sample``: z from q (else its mean),
        drawn with ``generator``. ``posterior_audio``: False, or a [b] bool mask, hides the audio
        from the posterior (zeros). ``motion=False`` leaves the motion path out: z, its mean and
        log-variance and dw_mot are zeros (lip-only training).
        """
        b, t = ws.shape[:2]
        c, k, ahead = context_frames, self.lip_mapper.context_frames, self.prior.lookahead
        if c < max(k, ahead):
            raise StyleTalkerError(f"the data give {c} frames of audio context, the model needs {max(k, ahead)} "
                                   f"(lip mapper {k}, prior lookahead {ahead}); raise the dataset's audio_context_frames")
        features_all = self.audio_encoder.features(audio, t + 2 * c)
        dw_lip = self.lip_mapper(features_all[:, c - k: c + t + k], w_id)[:, k: k + t]
        features = features_all[:, c: c + t]
        future = features_all[:, c + t: c + t + ahead]
        if not motion:
            zeros = ws.new_zeros(b, t, self.motion_vae.z_dim)
            return TrainingLatents(compose(w_id, dw_lip, None), dw_lip, torch.zeros_like(dw_lip), zeros, zeros, zeros,
                                   features, future)
        posterior_features = features
        if posterior_audio is False:
            posterior_features = torch.zeros_like(features)
        elif isinstance(posterior_audio, torch.Tensor):
            posterior_features = features * posterior_audio.to(features.dtype)[:, None, None]
        mean, log_var = self.motion_vae.posterior(ws - w_id[:, None], posterior_features)
        z = reparameterize(mean, log_var, generator) if sample else mean
        dw_mot = self.motion_vae.decode(z, w_id)
        return TrainingLatents(compose(w_id, dw_lip, dw_mot), dw_lip, dw_mot, z, mean, log_var, features, future)

    # -- generation ----------------------------------------------------------------------
    def _features(self, wave: WaveWindow, total: int, low: int, high: int) -> torch.Tensor:
        """Features of frames [low, high) of a wave fitted to ``total`` frames, computed from that span
        plus the encoder's receptive field on each side (so they equal a one-pass computation)."""
        spf = self.samples_per_frame
        margin = self._audio_margin()
        first, last = max(0, low - margin), min(total, high + margin)
        features = self.audio_encoder.features(wave.span(first * spf, last * spf), last - first)
        return features[:, low - first: high - first]

    def _audio_margin(self) -> int:
        reach = self.audio_encoder.context_frames
        return UNBOUNDED_AUDIO_CONTEXT if reach is None else reach

    @torch.no_grad()
    def stream_latents(
        self,
        w_id: torch.Tensor,
        audio: torch.Tensor | Iterable[torch.Tensor | np.ndarray],
        *,
        motion: torch.Tensor | None = None,
        motion_fit: MotionFit = "loop",
        temperature: float = 1.0,
        num_samples: int = 1,
        generator: torch.Generator | None = None,
        pose_scale: float = 1.0,
        still: bool = False,
        chunk_frames: int = 250,
    ) -> Iterator[torch.Tensor]:
        """Yields W+ latents chunk by chunk: [n, <= chunk_frames, l, w], n = num_samples.

        w_id [1, l, w]; audio [s] at 16 kHz, or an iterable of consecutive chunks [n] of it (a
        long recording read as it goes: only the chunks the current frames need are held).
        ``motion`` z [T, z] (from :meth:`encode_motion`): motion-controllable mode; None:
        audio-driven (z drawn from the prior, ``num_samples`` independent draws, reproducible
        with ``generator``). The chunks concatenated equal one pass over the whole audio when
        the audio encoder's receptive field is bounded, and do not depend on how the audio is
        cut into chunks.
        """
        if chunk_frames < 1:
            raise StyleTalkerError(f"chunk_frames must be >= 1, got {chunk_frames}")
        if motion is not None and num_samples != 1:
            raise StyleTalkerError("several samples need audio-driven mode; drop the motion source or use num_samples = 1")
        if motion is not None:
            output_frames(0, len(motion), motion_fit)  # refuses an unknown fit mode
            if len(motion) == 0:
                raise ValueError("the motion source has no frames")
        chunks = [audio.reshape(-1)] if isinstance(audio, torch.Tensor) else audio
        wave = WaveWindow(chunks, self.device)
        spf, margin = self.samples_per_frame, self._audio_margin()
        w_id = w_id.to(self.device)
        k, ahead = self.lip_mapper.context_frames, self.prior.lookahead
        reach = max(k, ahead)
        motion = None if motion is None else motion.to(self.device)
        state = None
        start = 0
        while True:
            # enough audio for this chunk's features (or all of it): every length below is then known
            wave.fill((start + chunk_frames + reach + margin) * spf)
            audio_total = self.audio_frames(wave.received) if wave.ended else start + chunk_frames + reach + margin
            stop = min(start + chunk_frames, audio_total)
            if motion is not None and motion_fit == "trim":
                stop = min(stop, len(motion))
            if stop <= start:
                break
            low, high = max(0, start - k), min(audio_total, stop + reach)
            features = self._features(wave, audio_total, low, high)
            lip_high = min(stop + k, audio_total) - low
            dw_lip = self.lip_mapper(features[:, :lip_high], w_id)[:, start - low: stop - low]
            dw_mot = None
            if not still:
                if motion is None:
                    own = features[:, start - low: stop - low].expand(num_samples, -1, -1)
                    future = features[:, stop - low: stop - low + ahead].expand(num_samples, -1, -1)
                    z, state = self.prior.sample(own, temperature, state, generator, future=future)
                else:
                    z = fit_motion_span(motion, start, stop)[None]
                dw_mot = self.motion_vae.decode(z, w_id.expand(z.shape[0], -1, -1))
            ws = compose(w_id, dw_lip, dw_mot, pose_scale)
            yield ws.expand(num_samples, -1, -1, -1) if ws.shape[0] != num_samples else ws
            wave.drop_before(max(0, stop - k - margin) * spf)  # the next chunk reads from there on
            start = stop

    @torch.no_grad()
    def render(self, ws: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
        """ws [n, t, l, w] -> frames [n, t, 3, h, w] in [-1, 1] (clamped), rendered in batches."""
        flat = ws.flatten(0, 1)
        images = [self.generator.synthesis(chunk, noise_mode="const").clamp(-1, 1) for chunk in flat.split(batch_size)]
        return torch.cat(images).unflatten(0, ws.shape[:2])

    def stream(self, reference: torch.Tensor, audio: torch.Tensor, *, batch_size: int = 16,
               **options: object) -> Iterator[torch.Tensor]:
        """Yields frames chunk by chunk: [n, <= chunk_frames, 3, h, w] in [-1, 1].

        reference [3, h, w] aligned face in [-1, 1]; audio [s] at 16 kHz; ``options`` as in
        :meth:`stream_latents` (motion, motion_fit, temperature, num_samples, generator,
        pose_scale, still, chunk_frames).
        """
        w_id = self.encode_identity(reference)
        for ws in self.stream_latents(w_id, audio, **options):  # type: ignore[arg-type]
            yield self.render(ws, batch_size)

    def generate(self, reference: torch.Tensor, audio: torch.Tensor, **options: object) -> torch.Tensor:
        """All frames at once: [n, t, 3, h, w] in [-1, 1]; same options as :meth:`stream`."""
        return torch.cat(list(self.stream(reference, audio, **options)), dim=1)  # type: ignore[arg-type]
