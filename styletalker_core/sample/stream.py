"""Real-time streaming generation: audio arrives in chunks of any size, frames leave as soon as
the audio they depend on has arrived.

A :class:`StreamSession` is opened with a model, the reference's identity latent (or a
motion source's codes as well, for the motion-controllable mode) and the generation options
of ``styletalker sample``; it is then fed audio chunks (:meth:`StreamSession.feed`) and
closed (:meth:`StreamSession.finish`). Each call returns the frames that became ready, with
their timestamps. For the same model, seed and audio the frames equal the offline
:meth:`TalkingHead.stream_latents` + :meth:`TalkingHead.render` frames of ``styletalker
sample`` (float rounding aside: max abs difference below 1e-5, tests/test_stream.py), for any
chunking of the audio.

What a frame waits for. Frame t covers the audio samples ``[t * spf, (t + 1) * spf)`` (spf =
640 at 16 kHz and 25 fps). Its pixels depend on

- the audio features of frames t - k .. t + f, where f is the lip mapper's look-ahead
  (``lookahead_frames``; its ``context_frames`` k on the past side), and, when the motion comes
  from the prior (audio-driven mode, not still), of frames up to t + the prior's ``lookahead``;
- the features of frame u depend on the samples up to ``(u + 1) * spf + reach`` (the audio
  front-end's look-ahead: 1580 samples, 98.75 ms, for the ``mel`` encoder's 0.2 s windows; the
  encoder's ``context_frames`` whole frames for other bounded encoders).

So frame t is ready once ``(t + 1 + ahead) * spf + reach`` samples have arrived, ahead = the
larger of the two look-aheads in use: :attr:`StreamSession.lookahead_seconds` past the end of
the frame's own audio. Closing the stream supplies the silence after the last sample (as the
offline path pads it) and releases the remaining frames.

State carried between chunks: the 16 kHz samples the next features still need (the
front-end's overlap), the features of the last k frames (the lip mapper's window) and the
ones computed ahead, the prior's recurrent state (backbone state, last z, audio history), the
random generator, and the resampler's filter state.

Audio at other rates is resampled on the fly by FFmpeg's libswresample, the resampler
``styletalker sample`` uses when it reads a file (styletalker_core.media.audio): its output
does not depend on how the input is chunked, so a stream of 44.1 kHz float samples gives the
same 16 kHz samples, and so the same frames, as ``sample`` reading the same samples from a
float WAV file. (Integer PCM is converted to float before resampling; FFmpeg reading an
integer file resamples the integers, which can differ in the last bits.)

An audio encoder without a bounded receptive field (``context_frames`` None, e.g. wav2vec2)
is streamed with 25 frames of audio on each side of the frames computed, like the offline
chunked path; neither is then exactly a one-pass computation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import torch

from styletalker_core.errors import StyleTalkerError
from styletalker_core.model.latents import compose
from styletalker_core.model.motion_fit import MotionFit

if TYPE_CHECKING:
    from styletalker_core.interfaces import AudioEncoder, LipMapper, Prior
    from styletalker_core.model.talking_head import TalkingHead
    from styletalker_core.sample.engine import Sampler
    from styletalker_core.sample.settings import SampleSettings

UNBOUNDED_MARGIN_FRAMES = 25  # as TalkingHead's offline chunking for encoders without a bounded reach
# Matrix products with fewer rows than this take another kernel in MKL (and oneDNN), whose
# rounding differs from the one a long offline chunk gets; per-frame work is padded to it.
MIN_ROWS = 16


class StreamError(StyleTalkerError):
    """A stream that cannot go on: bad audio samples, a closed session, a bad option."""


@attrs.frozen
class StreamFrame:
    """One generated frame.

    index: frame number from 0; time: its start in seconds (index / fps); pixels [n, 3, h, w]
    in [-1, 1] (n samples); audio: the frame's own 16 kHz samples [spf] (zeros past the end);
    arrived: perf_counter() when the chunk that completed it was fed; ready: perf_counter()
    when its pixels were rendered.
    """

    index: int
    time: float
    pixels: torch.Tensor
    audio: np.ndarray
    arrived: float
    ready: float

    @property
    def latency(self) -> float:
        """Seconds from the arrival of the chunk that completed the frame to the frame."""
        return self.ready - self.arrived

    def rgb(self, sample: int = 0) -> np.ndarray:
        """uint8 [h, w, 3] of one sample (the same rounding as the mp4 writers)."""
        return self.pixels[sample].movedim(0, -1).add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8).cpu().numpy()


def _as_float(samples: np.ndarray | torch.Tensor, where: str) -> np.ndarray:
    """A mono chunk as float32 [s]: int16 / int32 PCM scaled to [-1, 1); floats kept; finite only."""
    array = samples.detach().cpu().numpy() if isinstance(samples, torch.Tensor) else np.asarray(samples)
    if array.ndim == 2:  # [s, channels] interleaved frames: averaged to mono as the file reader does
        array = array.mean(axis=1) if array.dtype.kind == "f" else array.astype(np.float64).mean(axis=1)
    if array.ndim != 1:
        raise StreamError(f"{where}: give mono samples [s] or frames [s, channels], got shape {array.shape}")
    if array.dtype == np.int16:
        array = array.astype(np.float32) / 32768.0
    elif array.dtype == np.int32:
        array = (array.astype(np.float64) / 2147483648.0).astype(np.float32)
    elif array.dtype.kind in "iu":
        raise StreamError(f"{where}: samples of type {array.dtype}: give float, int16 or int32 samples")
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise StreamError(f"{where}: the audio has NaN or infinite samples; give finite samples in [-1, 1]")
    return array


class StreamResampler:
    """Mono float32 chunks at ``rate`` -> chunks at ``target`` (libswresample, stateful).

    The output does not depend on how the input is cut into chunks; :meth:`flush` returns the
    samples the filter still holds at the end.
    """

    def __init__(self, rate: int, target: int) -> None:
        import av

        if rate < 1:
            raise StreamError(f"sample rate {rate}: give a rate in Hz of at least 1")
        self.rate, self.target = rate, target
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=target)
        self._pts = 0

    def _collect(self, frames: list) -> np.ndarray:  # of av.AudioFrame
        pieces = [frame.to_ndarray().reshape(-1) for frame in frames]
        return np.concatenate(pieces).astype(np.float32, copy=False) if pieces else np.zeros(0, np.float32)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        import av

        if samples.size == 0:
            return np.zeros(0, np.float32)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, dtype=np.float32)[None], format="flt", layout="mono")
        frame.sample_rate, frame.pts = self.rate, self._pts
        self._pts += samples.size
        return self._collect(self._resampler.resample(frame))

    def flush(self) -> np.ndarray:
        return self._collect(self._resampler.resample(None))


def front_end_reach(audio_encoder: AudioEncoder) -> int:
    """Samples after a frame's own audio that its features depend on (the front-end's look-ahead)."""
    spf = audio_encoder.samples_per_frame
    windows = getattr(audio_encoder, "windows", None)
    lead, segment = getattr(windows, "lead", None), getattr(windows, "segment", None)
    if isinstance(lead, int) and isinstance(segment, int):  # the mel front-end: windows centred on the frame
        return max(0, segment - lead - spf)
    reach = audio_encoder.context_frames
    return (UNBOUNDED_MARGIN_FRAMES if reach is None else reach) * spf


def _pad_time(x: torch.Tensor, rows: int = MIN_ROWS) -> torch.Tensor:
    """x [b, t, ...] with zero frames appended up to ``rows`` frames."""
    if x.shape[1] >= rows:
        return x
    return torch.cat([x, x.new_zeros(x.shape[0], rows - x.shape[1], *x.shape[2:])], dim=1)


class _PaddedWindow(torch.nn.Module):
    """Stands in for the prior's audio window during a streamed step: the frames of the step
    are followed by their future frames and zeros up to :data:`MIN_ROWS`, so the window's
    convolution and linear layer run with as many rows as in an offline chunk. Rows of the
    step's frames see exactly the inputs they see offline; the others are dropped."""

    def __init__(self, window: Any) -> None:  # the motion plugin's audio window (history, lookahead, carry)
        super().__init__()
        self.window = window
        self.history, self.lookahead = window.history, window.lookahead

    def forward(self, features: torch.Tensor, past: torch.Tensor | None = None,
                future: torch.Tensor | None = None) -> torch.Tensor:
        steps = features.shape[1]
        parts = [features]
        if future is not None and self.lookahead:
            parts.append(future[:, : self.lookahead])
        return self.window(_pad_time(torch.cat(parts, dim=1)), past=past, future=None)[:, :steps]

    def carry(self, past: torch.Tensor | None, features: torch.Tensor) -> torch.Tensor:
        return self.window.carry(past, features)


def _has_audio_window(prior: Prior) -> bool:
    window = getattr(prior, "audio", None)
    return isinstance(window, torch.nn.Module) and all(
        hasattr(window, name) for name in ("history", "lookahead", "carry"))


def _streaming_prior(prior: Prior) -> Prior:
    """The session's view of the prior: the same module with its audio window padded
    (:class:`_PaddedWindow`); a shallow copy sharing every weight, so sessions in other threads
    and the offline path keep the original. Another kind of prior is used as it is (its frames
    then equal the offline ones up to float rounding only)."""
    import copy

    if not _has_audio_window(prior):
        return prior
    view = copy.copy(prior)
    view._modules = dict(prior._modules)
    view._modules["audio"] = _PaddedWindow(prior.audio)
    return view


def _plain_mel(encoder: AudioEncoder) -> bool:
    """The built-in ``mel`` encoder, its ``features`` not overridden (the fast path below mirrors it)."""
    try:
        from styletalker_audio_mel.encoder import MelAudioEncoder
    except ImportError:  # the plugin is not installed
        return False
    return isinstance(encoder, MelAudioEncoder) and type(encoder).features is MelAudioEncoder.features


def _mel_features(encoder: Any, wave: torch.Tensor, frames: int, first: int, last: int) -> torch.Tensor:
    """``MelAudioEncoder.features(wave, frames)[:, first:last]`` without encoding the margin frames:
    only the log-mel windows of frames [first, last) are computed and go through the conv stack
    (at least two, as its convolutions round differently for one) and the head (padded to
    :data:`MIN_ROWS` rows). Each frame is encoded from its own window only, so this equals the
    one-pass features."""
    front = encoder.windows  # LogMelWindows: frame j's window is padded[j * spf: j * spf + segment]
    spf, segment = front.samples_per_frame, front.segment
    padded = torch.nn.functional.pad(encoder.fit_wave(wave, frames)[0], (front.lead, segment))
    segments = padded[first * spf: (last - 1) * spf + segment].unfold(0, segment, spf)  # [t, segment]
    windows = torch.log(torch.clamp(front.mel(segments), min=front.floor))  # [t, m, k]
    count = windows.shape[0]
    if count == 1:
        windows = torch.cat([windows, windows])
    pooled = encoder.blocks(windows).mean(dim=2)[:count]  # [t, c]
    return encoder.head(_pad_time(pooled[None])[0])[None, :count]


def lip_lookahead(lip_mapper: LipMapper) -> int:
    """Frames of audio features after frame t that the lip mapper reads (its context when it has no option)."""
    return int(getattr(lip_mapper, "lookahead_frames", lip_mapper.context_frames))


class StreamSession:
    """Streams one talking-head video: feed audio chunks, receive frames (see the module notes).

    head: a :class:`TalkingHead` (eval mode); w_id [1, l, w] the reference's latent
    (:meth:`Sampler.encode_reference`); motion: motion codes z [T, z]
    (:meth:`Sampler.encode_motion_video`) for the motion-controllable mode, else None;
    sample_rate: the rate of the chunks fed (resampled to the model's when different);
    the other options as in :meth:`TalkingHead.stream_latents` (``seed`` seeds a fresh CPU
    generator as ``styletalker sample`` does; or pass ``generator``). batch_size: frames per
    generator call when several frames are ready at once. render=False skips the generator
    (frames then carry W+ latents [n, l, w] as pixels: for timing the motion path alone).
    """

    def __init__(
        self,
        head: TalkingHead,
        w_id: torch.Tensor,
        *,
        motion: torch.Tensor | None = None,
        motion_fit: MotionFit = "loop",
        temperature: float = 1.0,
        num_samples: int = 1,
        seed: int = 0,
        generator: torch.Generator | None = None,
        pose_scale: float = 1.0,
        still: bool = False,
        sample_rate: int | None = None,
        batch_size: int = 16,
        render: bool = True,
    ) -> None:
        if motion is not None and num_samples != 1:
            raise StreamError("several samples need audio-driven mode; drop the motion source or use num_samples = 1")
        if motion is not None and still:
            raise StreamError("--still has no head motion, so a motion video has nothing to drive; drop one of them")
        if motion is not None and len(motion) == 0:
            raise StreamError("the motion source has no frames")
        if motion_fit not in ("loop", "trim"):
            raise StreamError(f"motion fit {motion_fit!r}: use 'loop' or 'trim'")
        if num_samples < 1 or batch_size < 1:
            raise StreamError("num_samples and batch_size must be at least 1")
        self.head = head
        self.device = head.device
        self.w_id = w_id.to(self.device)
        self.motion = None if motion is None else motion.to(self.device)
        self.motion_fit = motion_fit
        self.temperature, self.num_samples, self.pose_scale, self.still = temperature, num_samples, pose_scale, still
        self.generator = generator if generator is not None else torch.Generator(device=self.device).manual_seed(seed)
        self.batch_size, self.render = batch_size, render
        encoder = head.audio_encoder
        self.rate = head.sample_rate
        self.spf = head.samples_per_frame
        self.fps = head.fps
        self.margin = UNBOUNDED_MARGIN_FRAMES if encoder.context_frames is None else encoder.context_frames
        self.reach = front_end_reach(encoder)
        self.lip_past = head.lip_mapper.context_frames
        self.lip_ahead = lip_lookahead(head.lip_mapper)
        self.uses_prior = self.motion is None and not still
        self._prior = _streaming_prior(head.prior)
        self.prior_ahead = head.prior.lookahead if self.uses_prior else 0
        self.ahead = max(self.lip_ahead, self.prior_ahead)
        self.input_rate = sample_rate or self.rate
        self.resampler = None if self.input_rate == self.rate else StreamResampler(self.input_rate, self.rate)
        # audio: 16 kHz samples from absolute sample wave_start on; received: all samples so far
        self._wave = np.zeros(0, np.float32)
        self._wave_start = 0
        self.received = 0
        # features [1, m, c] of frames feat_start .. feat_done - 1
        self._features = torch.zeros(1, 0, encoder.feature_dim, device=self.device)
        self._feat_start = 0
        self.feat_done = 0
        self.next_frame = 0
        self._state: object = None  # the prior's recurrent state between steps
        self.closed = False
        self.audio_frames: int | None = None  # known once closed
        self._arrived = time.perf_counter()

    # -- sizes -----------------------------------------------------------------------------
    @property
    def lookahead_samples(self) -> int:
        """Samples past the end of a frame's own audio that must arrive before it can be made."""
        return self.ahead * self.spf + self.reach

    @property
    def lookahead_seconds(self) -> float:
        """The algorithmic look-ahead in seconds (chunking and compute come on top)."""
        return self.lookahead_samples / self.rate

    @property
    def total_frames(self) -> int | None:
        """Frames the stream will give (known once closed)."""
        if self.audio_frames is None:
            return None
        if self.motion is not None and self.motion_fit == "trim":
            return min(self.audio_frames, len(self.motion))
        return self.audio_frames

    # -- feeding ---------------------------------------------------------------------------
    def feed(self, samples: np.ndarray | torch.Tensor) -> list[StreamFrame]:
        """Add one chunk of audio (any length, the session's ``sample_rate``); returns the frames now ready."""
        if self.closed:
            raise StreamError("the stream is closed; open a new session for more audio")
        self._arrived = time.perf_counter()
        chunk = _as_float(samples, "audio chunk")
        if self.resampler is not None:
            chunk = self.resampler(chunk)
        self._append(chunk)
        return self._advance()

    def finish(self) -> list[StreamFrame]:
        """End of the audio: the remaining frames (the audio after the end counts as silence)."""
        if self.closed:
            return []
        self._arrived = time.perf_counter()
        if self.resampler is not None:
            self._append(self.resampler.flush())
        self.closed = True
        self.audio_frames = math.ceil(self.received / self.spf)
        return self._advance()

    def frames(self, chunks: Iterable[np.ndarray | torch.Tensor]) -> Iterator[StreamFrame]:
        """Feed every chunk, then close; yields each frame as soon as it is ready."""
        for chunk in chunks:
            yield from self.feed(chunk)
        yield from self.finish()

    def _append(self, chunk: np.ndarray) -> None:
        if chunk.size:
            self._wave = np.concatenate([self._wave, chunk])
            self.received += chunk.size

    # -- the work --------------------------------------------------------------------------
    def _span(self, first: int, last: int) -> torch.Tensor:
        """16 kHz samples [first, last) as [1, n]: zeros where nothing arrived (or past the end)."""
        out = np.zeros(last - first, np.float32)
        low, high = max(first, self._wave_start), min(last, self._wave_start + self._wave.size)
        if high > low:
            out[low - first: high - first] = self._wave[low - self._wave_start: high - self._wave_start]
        return torch.from_numpy(out)[None].to(self.device)

    def _compute_features(self) -> None:
        if self.closed:
            assert self.audio_frames is not None  # set when the stream closed
            can = self.audio_frames
        else:
            can = max(0, (self.received - self.reach) // self.spf)
        if can <= self.feat_done:
            return
        low = max(0, self.feat_done - self.margin)
        high = max(can + self.margin, low + MIN_ROWS)  # frames past the audio see zeros, as offline
        wave = self._span(low * self.spf, high * self.spf)
        with torch.no_grad():
            if _plain_mel(self.head.audio_encoder):
                features = _mel_features(self.head.audio_encoder, wave, high - low, self.feat_done - low, can - low)
            else:
                features = self.head.audio_encoder.features(wave, high - low)[:, self.feat_done - low: can - low]
        self._features = torch.cat([self._features, features], dim=1)
        self.feat_done = can

    def _ready_frames(self) -> int:
        """Frames [0, n) whose audio has all arrived."""
        if self.closed:
            return self.total_frames or 0
        ready = max(0, self.feat_done - self.ahead)
        if self.motion is not None and self.motion_fit == "trim":
            ready = min(ready, len(self.motion))
        return ready

    def _feature_slice(self, first: int, last: int) -> torch.Tensor:
        """Features of frames [first, last) that exist (clipped to what is computed)."""
        first, last = max(first, self._feat_start), min(last, self.feat_done)
        return self._features[:, first - self._feat_start: max(first, last) - self._feat_start]

    def _motion_codes(self, start: int, stop: int) -> torch.Tensor:
        """z of frames [start, stop) of the motion source fitted as ``fit_motion`` does: [1, t, z]."""
        assert self.motion is not None  # called in the motion-controllable mode only
        length = len(self.motion)
        index = torch.arange(start, stop, device=self.device)
        if length == 1:
            index = torch.zeros_like(index)
        elif stop > length:  # past the source's end: looped back and forth (trim never gets here)
            period = 2 * (length - 1)
            position = index % period
            index = torch.where(position < length, position, period - position)
        return self.motion.index_select(0, index)[None]

    @torch.no_grad()
    def _latents(self, start: int, stop: int) -> torch.Tensor:
        head, n = self.head, self.num_samples
        low = max(0, start - self.lip_past)
        steps = stop - start
        # zeros after the look-ahead frames: the frames' windows end before them, as offline
        features = _pad_time(self._feature_slice(low, stop + self.lip_ahead))
        dw_lip = head.lip_mapper(features, self.w_id)[:, start - low: stop - low]
        dw_mot = None
        if self.uses_prior:
            own = self._feature_slice(start, stop).expand(n, -1, -1)
            future = self._feature_slice(stop, stop + self.prior_ahead).expand(n, -1, -1)
            z, self._state = self._sample_prior(own, future)
            dw_mot = head.motion_vae.decode(_pad_time(z), self.w_id.expand(n, -1, -1))[:, :steps]
        elif self.motion is not None:
            dw_mot = head.motion_vae.decode(_pad_time(self._motion_codes(start, stop)), self.w_id)[:, :steps]
        ws = compose(self.w_id, dw_lip, dw_mot, self.pose_scale)
        return ws.expand(n, -1, -1, -1) if ws.shape[0] != n else ws

    def _sample_prior(self, own: torch.Tensor, future: torch.Tensor) -> tuple[torch.Tensor, object]:
        return self._prior.sample(own, self.temperature, self._state, self.generator, future=future)

    def _frame_audio(self, index: int) -> np.ndarray:
        return self._span(index * self.spf, (index + 1) * self.spf)[0].cpu().numpy()

    def _advance(self) -> list[StreamFrame]:
        self._compute_features()
        ready = self._ready_frames()
        frames: list[StreamFrame] = []
        while self.next_frame < ready:
            start = self.next_frame
            stop = min(ready, start + self.batch_size)
            ws = self._latents(start, stop)
            images = self.head.render(ws, self.batch_size) if self.render else ws
            done = time.perf_counter()
            for offset in range(stop - start):
                index = start + offset
                frames.append(StreamFrame(index, index / self.fps, images[:, offset], self._frame_audio(index),
                                          self._arrived, done))
            self.next_frame = stop
        self._trim()
        return frames

    def _trim(self) -> None:
        """Drop the samples and features no later frame needs (memory stays flat)."""
        keep_features = max(0, self.next_frame - self.lip_past)
        if keep_features > self._feat_start:
            self._features = self._features[:, keep_features - self._feat_start:]
            self._feat_start = keep_features
        keep_samples = min(self.next_frame, max(0, self.feat_done - self.margin)) * self.spf
        if keep_samples > self._wave_start:
            self._wave = self._wave[keep_samples - self._wave_start:]
            self._wave_start = keep_samples


def open_session(sampler: Sampler, image: str | Path | None = None, *, w_id: torch.Tensor | None = None,
                 motion: torch.Tensor | str | Path | None = None, settings: SampleSettings | None = None,
                 sample_rate: int | None = None, render: bool = True) -> StreamSession:
    """A session for a :class:`Sampler`: the reference image (path; or its latent ``w_id``), an
    optional motion video (path, or motion codes [T, z]) and :class:`SampleSettings` (default:
    the model's)."""
    settings = settings or sampler.defaults
    if w_id is None:
        if image is None:
            raise StreamError("give a reference image (or its latent)")
        w_id, _, _ = sampler.encode_reference(Path(image), settings.align)
    if motion is not None and not isinstance(motion, torch.Tensor):
        motion = sampler.encode_motion_video(Path(motion), settings.align, settings.batch_size)
    return StreamSession(
        sampler.head, w_id, motion=motion, motion_fit=settings.motion_fit, temperature=settings.temperature,
        num_samples=settings.num_samples, seed=settings.seed, pose_scale=settings.pose_scale, still=settings.still,
        sample_rate=sample_rate, batch_size=settings.batch_size, render=render,
    )


def chunked(wave: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """``wave`` cut into consecutive chunks of ``size`` samples (the last may be shorter)."""
    for start in range(0, len(wave), max(1, size)):
        yield wave[start: start + size]
