"""A sliding window over speech that arrives in chunks, for generation that reads the audio as it goes.

:meth:`TalkingHead.stream_latents` asks for spans of samples; the window pulls chunks from
its source only as far as a span needs and forgets the samples before the point no later
span reaches, so a long recording is never held whole. Past the end of the audio a span
reads zeros, as the offline path's zero-padded wave (``AudioEncoder.fit_wave``) does.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch


class WaveWindow:
    """Mono samples [s] from ``chunks`` (tensors or float arrays [n], in order), kept from
    sample :attr:`start` to :attr:`received` on ``device``."""

    def __init__(self, chunks: Iterable[torch.Tensor | np.ndarray], device: torch.device | str = "cpu") -> None:
        self._source: Iterator[torch.Tensor | np.ndarray] = iter(chunks)
        self.device = torch.device(device)
        self._wave: torch.Tensor | None = None  # samples start .. received - 1
        self.start = 0
        self.received = 0
        self.ended = False

    def fill(self, samples: int) -> None:
        """Pull chunks until ``samples`` samples have arrived in all, or the source ends."""
        pieces = [] if self._wave is None else [self._wave]
        while self.received < samples and not self.ended:
            chunk = next(self._source, None)
            if chunk is None:
                self.ended = True
                break
            piece = torch.as_tensor(chunk).reshape(-1).to(self.device)
            if piece.numel():
                pieces.append(piece)
                self.received += piece.numel()
        if len(pieces) > 1:
            self._wave = torch.cat(pieces)
        elif pieces:
            self._wave = pieces[0]

    def span(self, first: int, last: int) -> torch.Tensor:
        """Samples [first, last) as [1, last - first]: zeros past the end of the audio. Samples
        before :attr:`start` were dropped (an error); ones not pulled yet are :meth:`fill`-ed first."""
        if first < self.start:
            raise ValueError(f"samples from {first} were dropped (the window starts at {self.start})")
        self.fill(last)
        dtype = torch.float32 if self._wave is None else self._wave.dtype
        out = torch.zeros(1, max(0, last - first), dtype=dtype, device=self.device)
        high = min(last, self.received)
        if self._wave is not None and high > first:
            out[0, : high - first] = self._wave[first - self.start: high - self.start]
        return out

    def drop_before(self, sample: int) -> None:
        """Forget the samples before ``sample`` (no later span starts before it)."""
        if self._wave is None or sample <= self.start:
            return
        cut = min(sample, self.received) - self.start
        self._wave = self._wave[cut:]  # a view: its storage goes at the next fill's join
        self.start += cut
